// SPDX-License-Identifier: GPL-2.0
// Loopback at the speed of a direct connection: cgroup sock_addr programs
// that rewrite, at connect() and sendmsg() time, a published port on
// 127.0.0.0/8 or ::1 to the container's address and port, so that no proxy
// and no second connection stand in between. getpeername() and recvmsg()
// turn the container's address back into the one the client dialed, from
// what connect or sendmsg wrote in the socket's own storage.
//
// Only sockets of the namespace portpub ran in are rewritten (its cookie is
// set before load). Left to the proxy, which nft redirects them to: IPv6-only
// sockets and unconnected UDP datagrams to ::1, which cannot be sent to an
// IPv4-only container's v4-mapped address, and clients bound to a loopback
// address, which could not leave it.
//
// Compiled by clang at build time and embedded with `bpftool gen skeleton`
// (src/kernel/sock_rewrite.cpp loads it).
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

// Set by the loader: the cookie of the namespace whose sockets are rewritten.
const volatile __u64 host_netns_cookie = 0;

// A published host address and ports, as a key of a longest-prefix-match
// trie: proto, family and address always whole, then the port (network
// order), of which a range of published ports gives only the first bits. So a
// range of any size is a few entries (aligned blocks of 2^k ports), and a
// lookup with the whole port finds the block that holds it. addr is an IPv4
// address in addr[0] (family 4), all zero for every address of 127.0.0.0/8;
// ::1 for family 6. Kept in step with sock_rewrite.cpp.
struct service_key {
    __u32 prefixlen;
    __u8 proto;  // IPPROTO_TCP or IPPROTO_UDP
    __u8 family; // 4 or 6
    __u16 zero;
    __u32 addr[4];
    __u16 port;
    __u16 unused;  // never in a prefix
};
#define WHOLE_PORT ((2 + 2 + 16 + 2) * 8)

// Where it goes: the container's IPv4 address, its IPv6 one when it has one
// (else ::1 clients reach the IPv4 one, v4-mapped), and the port: the
// dialed one plus `offset` (modulo 2^16), the same for every port of a range.
struct service_target {
    __u32 addr4;
    __u32 addr6[4];
    __u16 offset;
    __u8 has6;
    __u8 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1 << 20);  // no memory until used (BPF_F_NO_PREALLOC)
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct service_key);
    __type(value, struct service_target);
} services SEC(".maps");

static __always_inline __u16 target_port(const struct service_target *t, __u16 port) {
    return bpf_htons((__u16)(bpf_ntohs(port) + t->offset));
}

// What a socket dialed, and what that became: a few, for an unconnected UDP
// socket that sends to more than one published port. In the socket's own
// storage, so that it is exact for as long as the socket lives and goes with
// it. Its cost, measured (scripts/bench.sh proxy): the program takes about
// 1 us a rewritten connect with it, 0.2 us without; an LRU map keyed by the
// socket's cookie costs as much (any map write here does), and would forget.
#define ORIGINS 4
struct origin {
    __u32 dialed[4];
    __u32 reached[4];
    __u16 dialed_port;
    __u16 reached_port;
    __u32 used;
};
struct origins {
    struct origin o[ORIGINS];
    __u32 next;
};

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct origins);
} origins SEC(".maps");

// Just enough of the kernel's types to read one bit, relocated by libbpf
// against the running kernel's BTF (CO-RE).
struct sock_common {
    unsigned char skc_ipv6only : 1;
} __attribute__((preserve_access_index));
struct sock {
    struct sock_common __sk_common;
} __attribute__((preserve_access_index));

static __always_inline int own_namespace(struct bpf_sock_addr *ctx) {
    return bpf_get_netns_cookie(ctx) == host_netns_cookie;
}

static __always_inline int loopback4(__u32 a) { return (bpf_ntohl(a) >> 24) == 127; }

static __always_inline int is_loopback6(const __u32 *a) {
    return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

static __always_inline int is_mapped4(const __u32 *a) {
    return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

// A client bound to a loopback address before connect: rewritten, it could
// not reach the container (EINVAL), so the proxy serves it.
static __always_inline int bound_to_loopback(struct bpf_sock_addr *ctx) {
    struct bpf_sock *sk = ctx->sk;
    if (!sk) return 0;
    if (ctx->family == 2 /* AF_INET */) return loopback4(sk->src_ip4);
    __u32 a[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
    return is_loopback6(a) || (is_mapped4(a) && loopback4(a[3]));
}

// A dual-stack socket bound to an IPv6 address that is not v4-mapped
// cannot reach a v4-mapped one either (its source would be wrong).
static __always_inline int bound_to_ipv6(struct bpf_sock_addr *ctx) {
    struct bpf_sock *sk = ctx->sk;
    if (!sk) return 0;
    __u32 a[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
    return !(a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) && !is_mapped4(a);
}

static __always_inline int ipv6_only(struct bpf_sock_addr *ctx) {
    struct sock *s = 0;
    if (ctx->protocol == IPPROTO_TCP)
        s = (struct sock *)bpf_skc_to_tcp6_sock(ctx->sk);
    else
        s = (struct sock *)bpf_skc_to_udp6_sock(ctx->sk);
    if (!s) return 0;
    return BPF_CORE_READ_BITFIELD(&s->__sk_common, skc_ipv6only);
}

static __always_inline struct service_target *find4(__u8 proto, __u32 addr, __u16 port) {
    struct service_key key = {};
    key.prefixlen = WHOLE_PORT;
    key.addr[0] = addr;
    key.port = port;
    key.proto = proto;
    key.family = 4;
    struct service_target *t = bpf_map_lookup_elem(&services, &key);
    if (t) return t;
    key.addr[0] = 0;  // published on every loopback address
    return bpf_map_lookup_elem(&services, &key);
}

static __always_inline void remember(struct bpf_sock_addr *ctx, const __u32 *dialed,
                                     __u16 dialed_port, const __u32 *reached,
                                     __u16 reached_port) {
    struct origins *o =
        bpf_sk_storage_get(&origins, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!o) return;
    __u32 i = o->next % ORIGINS;
    // The same destination again takes its own slot back.
    for (__u32 k = 0; k < ORIGINS; k++) {
        struct origin *c = &o->o[k];
        if (c->used && c->reached_port == reached_port && c->reached[0] == reached[0] &&
            c->reached[1] == reached[1] && c->reached[2] == reached[2] &&
            c->reached[3] == reached[3]) {
            i = k;
            break;
        }
    }
    if (i >= ORIGINS) return;
    struct origin *slot = &o->o[i];
    for (int k = 0; k < 4; k++) {
        slot->dialed[k] = dialed[k];
        slot->reached[k] = reached[k];
    }
    slot->dialed_port = dialed_port;
    slot->reached_port = reached_port;
    slot->used = 1;
    if (i == o->next % ORIGINS) o->next++;
}

// For getpeername and recvmsg: the address the client dialed, when `addr`
// and `port` are what one of its rewrites reached.
static __always_inline struct origin *recall(struct bpf_sock_addr *ctx, const __u32 *addr,
                                             __u16 port) {
    struct origins *o = bpf_sk_storage_get(&origins, ctx->sk, 0, 0);
    if (!o) return 0;
    for (__u32 k = 0; k < ORIGINS; k++) {
        struct origin *c = &o->o[k];
        if (c->used && c->reached_port == port && c->reached[0] == addr[0] &&
            c->reached[1] == addr[1] && c->reached[2] == addr[2] && c->reached[3] == addr[3])
            return c;
    }
    return 0;
}

static __always_inline int rewrite4(struct bpf_sock_addr *ctx) {
    if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP) return 1;
    __u32 dst = ctx->user_ip4;
    if (!loopback4(dst) || !own_namespace(ctx)) return 1;
    __u16 port = (__u16)ctx->user_port;
    struct service_target *t = find4(ctx->protocol, dst, port);
    if (!t || bound_to_loopback(ctx)) return 1;
    const __u32 dialed[4] = {dst, 0, 0, 0};
    const __u32 reached[4] = {t->addr4, 0, 0, 0};
    const __u16 to = target_port(t, port);
    ctx->user_ip4 = t->addr4;
    ctx->user_port = to;
    remember(ctx, dialed, port, reached, to);
    return 1;
}

static __always_inline int rewrite6(struct bpf_sock_addr *ctx, int sendmsg) {
    if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP) return 1;
    __u32 dst[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
    const int mapped = is_mapped4(dst) && loopback4(dst[3]);
    if ((!mapped && !is_loopback6(dst)) || !own_namespace(ctx)) return 1;
    __u16 port = (__u16)ctx->user_port;
    struct service_target *t = 0;
    if (mapped) {
        t = find4(ctx->protocol, dst[3], port);
    } else {
        struct service_key key = {};
        key.prefixlen = WHOLE_PORT;
        key.addr[3] = bpf_htonl(1);
        key.port = port;
        key.proto = ctx->protocol;
        key.family = 6;
        t = bpf_map_lookup_elem(&services, &key);
    }
    if (!t || bound_to_loopback(ctx)) return 1;
    __u32 reached[4];
    if (!mapped && t->has6) {
        for (int k = 0; k < 4; k++)
            reached[k] = t->addr6[k];
    } else {
        // An IPv6-only socket cannot take a v4-mapped address, nor can an
        // unconnected UDP one's sendmsg (the kernel refuses it, ENOTSUPP):
        // those are the proxy's.
        if (sendmsg || ipv6_only(ctx) || bound_to_ipv6(ctx)) return 1;
        reached[0] = 0;
        reached[1] = 0;
        reached[2] = bpf_htonl(0xffff);
        reached[3] = t->addr4;
    }
    ctx->user_ip6[0] = reached[0];
    ctx->user_ip6[1] = reached[1];
    ctx->user_ip6[2] = reached[2];
    ctx->user_ip6[3] = reached[3];
    const __u16 to = target_port(t, port);
    ctx->user_port = to;
    remember(ctx, dst, port, reached, to);
    return 1;
}

static __always_inline int restore4(struct bpf_sock_addr *ctx) {
    const __u32 from[4] = {ctx->user_ip4, 0, 0, 0};
    struct origin *o = recall(ctx, from, (__u16)ctx->user_port);
    if (o) {
        ctx->user_ip4 = o->dialed[0];
        ctx->user_port = o->dialed_port;
    }
    return 1;
}

static __always_inline int restore6(struct bpf_sock_addr *ctx) {
    const __u32 from[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2],
                           ctx->user_ip6[3]};
    struct origin *o = recall(ctx, from, (__u16)ctx->user_port);
    if (!o && is_mapped4(from)) {
        // A dual-stack UDP socket's sendto() to ::ffff:127.0.0.1 goes through
        // sendmsg4, which wrote it down in IPv4 form.
        const __u32 from4[4] = {from[3], 0, 0, 0};
        o = recall(ctx, from4, (__u16)ctx->user_port);
        if (o && o->dialed[1] == 0 && o->dialed[2] == 0 && o->dialed[3] == 0) {
            ctx->user_ip6[0] = 0;
            ctx->user_ip6[1] = 0;
            ctx->user_ip6[2] = bpf_htonl(0xffff);
            ctx->user_ip6[3] = o->dialed[0];
            ctx->user_port = o->dialed_port;
            return 1;
        }
    }
    if (o) {
        ctx->user_ip6[0] = o->dialed[0];
        ctx->user_ip6[1] = o->dialed[1];
        ctx->user_ip6[2] = o->dialed[2];
        ctx->user_ip6[3] = o->dialed[3];
        ctx->user_port = o->dialed_port;
    }
    return 1;
}

SEC("cgroup/connect4")
int portpub_connect4(struct bpf_sock_addr *ctx) { return rewrite4(ctx); }

SEC("cgroup/sendmsg4")
int portpub_sendmsg4(struct bpf_sock_addr *ctx) { return rewrite4(ctx); }

SEC("cgroup/recvmsg4")
int portpub_recvmsg4(struct bpf_sock_addr *ctx) { return restore4(ctx); }

SEC("cgroup/getpeername4")
int portpub_getpeername4(struct bpf_sock_addr *ctx) { return restore4(ctx); }

SEC("cgroup/connect6")
int portpub_connect6(struct bpf_sock_addr *ctx) { return rewrite6(ctx, 0); }

SEC("cgroup/sendmsg6")
int portpub_sendmsg6(struct bpf_sock_addr *ctx) { return rewrite6(ctx, 1); }

SEC("cgroup/recvmsg6")
int portpub_recvmsg6(struct bpf_sock_addr *ctx) { return restore6(ctx); }

SEC("cgroup/getpeername6")
int portpub_getpeername6(struct bpf_sock_addr *ctx) { return restore6(ctx); }
