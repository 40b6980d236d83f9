// The UDP conntrack entries of published ports, found and deleted over ctnetlink: one dump a
// family (UDP only, where the kernel can filter), the entries clients sent to this host picked
// by conntrack_match, and deletes sent in batches whose acks fit the socket's buffer.
#include "portpub/conntrack.hpp"

#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>

#include "portpub/conntrack_match.hpp"
#include "portpub/error.hpp"
#include "portpub/host_ports.hpp"

namespace portpub {

namespace {

constexpr std::size_t kReplyBuffer = 64 * 1024;  // above the 32 KiB a dump message can take
// Deletes go out many to a send; the acks of one send must fit the socket's
// default receive buffer, or the kernel drops them.
constexpr std::size_t kDeletesPerSend = 64;
constexpr std::size_t kMessageRoom = 512;  // a delete message takes under 200 bytes

// The kernel has no conntrack to talk to: no nfnetlink (the socket), or no
// nf_conntrack_netlink (the request). Then nothing is tracked: nothing to delete.
struct NoConntrack {};

bool means_no_conntrack(int err) {
    return err == EPROTONOSUPPORT || err == EOPNOTSUPP || err == EAFNOSUPPORT || err == ENOENT;
}

[[noreturn]] void fail(const std::string& what, int err = errno) {
    if (means_no_conntrack(err)) throw NoConntrack{};
    throw_errno(what, err);
}

struct CtFree {
    void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};
using CtPtr = std::unique_ptr<nf_conntrack, CtFree>;

// An entry to delete: its original direction and its zone.
struct Entry {
    FlowTuple flow;
    std::uint16_t zone = 0;
};

std::uint8_t family_of(const FlowTuple& f) {
    return f.dst.is_v4() ? AF_INET : AF_INET6;
}

nlmsghdr* put_request(char* at, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                      std::uint8_t family) {
    auto* nlh = mnl_nlmsg_put_header(at);
    nlh->nlmsg_type = static_cast<std::uint16_t>(NFNL_SUBSYS_CTNETLINK << 8 | type);
    nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    nlh->nlmsg_seq = seq;
    auto* nfh = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfh->nfgen_family = family;
    nfh->version = NFNETLINK_V0;
    nfh->res_id = 0;
    return nlh;
}

bool has_original_tuple(const nlmsghdr* nlh) {
    bool found = false;
    auto on_attr = [](const nlattr* attr, void* data) -> int {
        if (mnl_attr_get_type(attr) == CTA_TUPLE_ORIG) *static_cast<bool*>(data) = true;
        return MNL_CB_OK;
    };
    mnl_attr_parse(nlh, sizeof(nfgenmsg), on_attr, &found);
    return found;
}

// A delete request for one entry at `at`; returns the room it takes.
std::size_t put_delete(char* at, const Entry& e, std::uint32_t seq) {
    const auto& f = e.flow;
    const std::uint8_t family = family_of(f);
    auto* nlh = put_request(at, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq, family);
    CtPtr ct(must(nfct_new()));
    nfct_set_attr_u8(ct.get(), ATTR_ORIG_L3PROTO, family);
    nfct_set_attr(ct.get(), family == AF_INET ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV6_SRC,
                  f.src.data());
    nfct_set_attr(ct.get(), family == AF_INET ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV6_DST,
                  f.dst.data());
    nfct_set_attr_u8(ct.get(), ATTR_ORIG_L4PROTO, static_cast<std::uint8_t>(f.proto));
    nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_SRC, htons(f.src_port));
    nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_DST, htons(f.dst_port));
    if (e.zone) nfct_set_attr_u16(ct.get(), ATTR_ZONE, e.zone);
    if (nfct_nlmsg_build(nlh, ct.get()) < 0)
        throw_errno("cannot build the conntrack delete request for " + describe(f));
    // A delete without a tuple is a flush of the whole table: never send one.
    if (!has_original_tuple(nlh))
        throw Error("the conntrack delete request for " + describe(f) +
                    " came out without a tuple");
    return MNL_ALIGN(nlh->nlmsg_len);
}

// What a dump collects: the UDP entries sent to published ports.
struct Collector {
    const std::vector<Mapping>* published;
    const std::function<bool(const IpAddress&)>* is_local;
    std::vector<Entry> found;
};

int collect(const nlmsghdr* nlh, void* data) {
    auto* c = static_cast<Collector*>(data);
    CtPtr ct(nfct_new());
    if (!ct) {
        errno = ENOMEM;
        return MNL_CB_ERROR;
    }
    if (nfct_nlmsg_parse(nlh, ct.get()) < 0 || !nfct_attr_is_set(ct.get(), ATTR_ORIG_L4PROTO) ||
        nfct_get_attr_u8(ct.get(), ATTR_ORIG_L4PROTO) != IPPROTO_UDP)
        return MNL_CB_OK;
    const auto l3 = nfct_get_attr_u8(ct.get(), ATTR_ORIG_L3PROTO);
    if (l3 != AF_INET && l3 != AF_INET6) return MNL_CB_OK;
    const bool v4 = l3 == AF_INET;
    auto address = [&](nf_conntrack_attr a4, nf_conntrack_attr a6) {
        return IpAddress::from_bytes(
            v4 ? Family::v4 : Family::v6,
            static_cast<const std::uint8_t*>(nfct_get_attr(ct.get(), v4 ? a4 : a6)));
    };
    Entry e;
    e.flow.proto = Proto::udp;
    e.flow.src = address(ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
    e.flow.dst = address(ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST);
    e.flow.src_port = ntohs(nfct_get_attr_u16(ct.get(), ATTR_ORIG_PORT_SRC));
    e.flow.dst_port = ntohs(nfct_get_attr_u16(ct.get(), ATTR_ORIG_PORT_DST));
    if (!sent_to_published(e.flow, *c->published, *c->is_local)) return MNL_CB_OK;
    if (nfct_attr_is_set(ct.get(), ATTR_ZONE)) e.zone = nfct_get_attr_u16(ct.get(), ATTR_ZONE);
    try {
        c->found.push_back(e);
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
        return MNL_CB_ERROR;
    }
    return MNL_CB_OK;
}

// Asks the kernel (5.8 and later) to dump UDP entries only: a busy host
// holds many more TCP entries (TIME_WAIT among them), which `collect` would
// read only to skip. A kernel without dump filters ignores the attributes,
// and `collect` skips them as before.
void only_udp(nlmsghdr* nlh) {
    constexpr std::uint32_t kFilterProtoNum = 1 << 3;  // the kernel's CTA_FILTER_F_CTA_PROTO_NUM
    auto* orig = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
    auto* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
    mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
    mnl_attr_nest_end(nlh, proto);
    mnl_attr_nest_end(nlh, orig);
    auto* filter = mnl_attr_nest_start(nlh, CTA_FILTER);
    mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, kFilterProtoNum);
    mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
    mnl_attr_nest_end(nlh, filter);
}

// A ctnetlink socket.
class CtNetlink {
  public:
    CtNetlink() : seq_(static_cast<std::uint32_t>(::time(nullptr))) {
        nl_ = mnl_socket_open(NETLINK_NETFILTER);
        if (!nl_) fail("cannot open a netfilter netlink socket for conntrack");
        if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
            int err = errno;
            mnl_socket_close(nl_);
            fail("cannot bind the conntrack netlink socket", err);
        }
        int one = 1;
        // Acks without a copy of the request.
        ::setsockopt(mnl_socket_get_fd(nl_), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    }
    ~CtNetlink() { mnl_socket_close(nl_); }
    CtNetlink(const CtNetlink&) = delete;
    CtNetlink& operator=(const CtNetlink&) = delete;

    // The entries of one family sent to a host port of `published`.
    std::vector<Entry> published_entries(std::uint8_t family,
                                         const std::vector<Mapping>& published) {
        std::vector<char> buf(kReplyBuffer);
        auto* nlh = put_request(buf.data(), IPCTNL_MSG_CT_GET, NLM_F_DUMP, ++seq_, family);
        only_udp(nlh);
        const std::string what = std::string("cannot read the ") +
                                 (family == AF_INET ? "IPv4" : "IPv6") + " conntrack table";
        if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) fail(what);
        const auto seq = nlh->nlmsg_seq;
        // The host's addresses now: the flows clients sent to it.
        const std::function<bool(const IpAddress&)> is_local =
            [addresses = host_addresses()](const IpAddress& a) {
                return a.is_loopback() ||
                       std::find(addresses.begin(), addresses.end(), a) != addresses.end();
            };
        Collector c{&published, &is_local, {}};
        for (;;) {
            ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
            if (n < 0) fail(what);
            int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq,
                                mnl_socket_get_portid(nl_), collect, &c);
            if (rc == MNL_CB_STOP) return std::move(c.found);
            if (rc < 0) fail(what);
        }
    }

    // Deletes the entries, many to a send; returns how many the kernel deleted.
    std::size_t remove(const std::vector<Entry>& entries) {
        std::size_t deleted = 0;
        std::optional<std::string> failure;
        std::vector<char> out(kDeletesPerSend * kMessageRoom), in(kReplyBuffer);
        for (std::size_t at = 0; at < entries.size();) {
            const std::size_t count = std::min(kDeletesPerSend, entries.size() - at);
            const std::uint32_t first = seq_ + 1;
            std::size_t len = 0;
            for (std::size_t i = 0; i < count; ++i)
                len += put_delete(out.data() + len, entries[at + i], ++seq_);
            if (mnl_socket_sendto(nl_, out.data(), len) < 0)
                throw_errno("cannot send conntrack delete requests");
            for (std::size_t acked = 0; acked < count;) {
                wait_for_reply(acked, count);
                ssize_t n = mnl_socket_recvfrom(nl_, in.data(), in.size());
                if (n < 0) throw_errno("cannot read the conntrack delete replies");
                int len_left = static_cast<int>(n);
                for (auto* nlh = reinterpret_cast<const nlmsghdr*>(in.data());
                     mnl_nlmsg_ok(nlh, len_left); nlh = mnl_nlmsg_next(nlh, &len_left)) {
                    if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < first ||
                        nlh->nlmsg_seq > seq_)
                        continue;
                    ++acked;
                    const int err =
                        -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh))->error;
                    if (err == 0)
                        ++deleted;
                    else if (err != ENOENT && !failure)  // ENOENT: it went by itself meanwhile
                        failure = "cannot delete conntrack entry " +
                                  describe(entries[at + (nlh->nlmsg_seq - first)].flow) + ": " +
                                  errno_text(err);
                }
            }
            at += count;
        }
        if (failure) throw Error(*failure);
        return deleted;
    }

  private:
    // The kernel answers while it processes the send, so the acks are queued
    // already; the timeout only guards against an ack lost to a full buffer.
    void wait_for_reply(std::size_t acked, std::size_t count) {
        pollfd pfd{mnl_socket_get_fd(nl_), POLLIN, 0};
        int ready;
        while ((ready = ::poll(&pfd, 1, 1000)) < 0 && errno == EINTR) {
        }
        if (ready < 0) throw_errno("cannot wait for the conntrack delete replies");
        if (ready == 0)
            throw Error("the kernel acknowledged " + std::to_string(acked) + " of " +
                        std::to_string(count) + " conntrack delete requests");
    }

    mnl_socket* nl_ = nullptr;
    std::uint32_t seq_;
};

}  // namespace

std::size_t flush_udp_conntrack(const std::vector<Mapping>& published) {
    std::vector<Mapping> udp;
    for (const auto& m : published)
        if (m.proto == Proto::udp) udp.push_back(m);
    udp = merge_runs(udp);
    if (udp.empty()) return 0;
    try {
        CtNetlink ct;
        auto stale = ct.published_entries(AF_INET, udp);
        auto stale6 = ct.published_entries(AF_INET6, udp);
        stale.insert(stale.end(), stale6.begin(), stale6.end());
        return ct.remove(stale);
    } catch (const NoConntrack&) {
        return 0;
    }
}

std::optional<std::string> try_flush_udp_conntrack(const std::vector<Mapping>& published) {
    try {
        flush_udp_conntrack(published);
        return std::nullopt;
    } catch (const std::exception& e) {
        return std::string("the conntrack entries of the published UDP ports were not deleted (") +
               e.what() +
               "): a client that keeps sending to them may reach the old destination until it "
               "pauses for a few minutes";
    }
}

}  // namespace portpub
