// The nftables netlink plumbing shared by portpub's two tables: rules built expression by
// expression, batches of table, set, chain, rule and element messages, and the queries that
// read a table back.
//
// A caller fills a Batch for one inet table in the order the kernel must apply it; every
// message gets its own sequence number and a description ("adding 1000 element(s) to set
// pub4"), and element lists are cut into messages of 1000 so that no attribute nest passes
// 64 KiB. send() writes the whole batch in one sendmsg, with the send buffer raised to its
// size, so that the kernel takes it as one transaction: all of it or none. Every message asks
// for an ack, without a copy of the request, so that the acks of a large batch stay small. The
// first failure is reported by the description of the message that failed, with the kernel's
// extended ack text, as a std::system_error carrying the errno, so that a caller can tell an
// element that exists (EEXIST) from one already gone (ENOENT). If the acks stop coming, the
// outcome is unknown and the error says what to check; a query finds a missing set empty.
#include "nft_netlink.hpp"

#include <netinet/in.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <system_error>

#include "portpub/error.hpp"

namespace portpub::nft {

namespace {

constexpr std::size_t kElementsPerMessage = 1000;  // keeps one message's nest under 64 KiB
constexpr std::uint32_t kBatchPage = 256 * 1024;

nftnl_expr* expr(const char* name) {
    auto* e = nftnl_expr_alloc(name);
    if (!e) throw Error(std::string("out of memory for nft expression ") + name);
    return e;
}

struct BatchError {
    int err = 0;
    std::uint32_t seq = 0;
    std::string detail;  // the kernel's extended ack message, if any
};

// Reads the acknowledgements of `expected` messages; returns the first error.
std::optional<BatchError> read_acks(mnl_socket* nl, std::size_t expected,
                                    const std::string& unknown_outcome_advice) {
    std::optional<BatchError> first;
    std::vector<char> buf(64 * 1024);
    std::size_t seen = 0;
    pollfd pfd{mnl_socket_get_fd(nl), POLLIN, 0};
    while (seen < expected) {
        // The kernel answers while it processes the send, so the acks are queued
        // already; the timeout only guards against an ack lost to a full buffer.
        int ready = ::poll(&pfd, 1, 1000);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            if (first) break;  // the failure is known; the rest does not matter
            throw Error("the kernel acknowledged " + std::to_string(seen) + " of " +
                        std::to_string(expected) +
                        " messages of the nftables batch; its outcome is unknown: " +
                        unknown_outcome_advice);
        }
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) throw_errno("cannot read the nftables reply");
        auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
        int len = static_cast<int>(n);
        for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != NLMSG_ERROR) continue;
            ++seen;
            auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
            if (e->error == 0 || (first && first->seq <= nlh->nlmsg_seq)) continue;
            BatchError be{-e->error, nlh->nlmsg_seq, {}};
            if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
                // With NETLINK_CAP_ACK the request is not echoed: attributes follow the header.
                auto* attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(e) +
                                                             MNL_ALIGN(sizeof(nlmsgerr)));
                auto* tail = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
                while (reinterpret_cast<const char*>(attr) + sizeof(nlattr) <= tail &&
                       attr->nla_len >= sizeof(nlattr)) {
                    if ((attr->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
                        be.detail = static_cast<const char*>(mnl_attr_get_payload(attr));
                    attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(attr) +
                                                           MNL_ALIGN(attr->nla_len));
                }
            }
            first = be;
        }
    }
    return first;
}

}  // namespace

void TableFree::operator()(nftnl_table* t) const {
    nftnl_table_free(t);
}
void ChainFree::operator()(nftnl_chain* c) const {
    nftnl_chain_free(c);
}
void SetFree::operator()(nftnl_set* s) const {
    nftnl_set_free(s);
}
void RuleFree::operator()(nftnl_rule* r) const {
    nftnl_rule_free(r);
}

mnl_socket* open_socket() {
    mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl) {
        int err = errno;
        throw Error("cannot open a netfilter netlink socket: " + errno_text(err) +
                    no_nftables_hint(err));
    }
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int err = errno;
        mnl_socket_close(nl);
        throw_errno("cannot bind the netfilter netlink socket", err);
    }
    int one = 1;
    int fd = mnl_socket_get_fd(nl);
    // Errors carry no copy of the (possibly large) request, and a text when the kernel has one.
    ::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    int rcvbuf = 4 * 1024 * 1024;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    return nl;
}

void close_socket(mnl_socket* nl) {
    mnl_socket_close(nl);
}

std::string no_nftables_hint(int err) {
    if (err == EOPNOTSUPP || err == EPROTONOSUPPORT || err == EAFNOSUPPORT)
        return " (this kernel has no nftables support: load the nf_tables module or use a "
               "kernel built with CONFIG_NF_TABLES)";
    if (err == EPERM) return " (portpub needs CAP_NET_ADMIN: run it as root)";
    return "";
}

// ---- Rule

const char* family_name(std::uint32_t nfproto) {
    switch (nfproto) {
        case NFPROTO_INET:
            return "inet";
        case NFPROTO_IPV4:
            return "ip";
        case NFPROTO_IPV6:
            return "ip6";
        case NFPROTO_ARP:
            return "arp";
        case NFPROTO_BRIDGE:
            return "bridge";
        case NFPROTO_NETDEV:
            return "netdev";
        default:
            return "unknown";
    }
}

Rule::Rule(const char* table, const char* chain, std::uint32_t nfproto)
    : r_(must(nftnl_rule_alloc())) {
    static_assert(kInet == NFPROTO_INET);
    nftnl_rule_set_str(r_.get(), NFTNL_RULE_TABLE, table);
    nftnl_rule_set_str(r_.get(), NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(r_.get(), NFTNL_RULE_FAMILY, nfproto);
}

const char* Rule::chain() const {
    return nftnl_rule_get_str(r_.get(), NFTNL_RULE_CHAIN);
}

Rule& Rule::ipv4_only() {
    return family(NFPROTO_IPV4);
}
Rule& Rule::ipv6_only() {
    return family(NFPROTO_IPV6);
}
Rule& Rule::family(std::uint8_t nfproto) {
    return meta(NFT_META_NFPROTO, NFT_REG_1).cmp(NFT_REG_1, NFT_CMP_EQ, &nfproto, 1);
}
Rule& Rule::tcp_only() {
    std::uint8_t tcp = IPPROTO_TCP;
    return meta(NFT_META_L4PROTO, NFT_REG_1).cmp(NFT_REG_1, NFT_CMP_EQ, &tcp, 1);
}
Rule& Rule::meta(std::uint32_t key, std::uint32_t dreg) {
    auto* e = expr("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
    return add(e);
}
Rule& Rule::cmp(std::uint32_t sreg, std::uint32_t op, const void* data, std::uint32_t len) {
    auto* e = expr("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    return add(e);
}
Rule& Rule::payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len,
                    std::uint32_t dreg) {
    auto* e = expr("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
    return add(e);
}
Rule& Rule::ip_saddr(std::uint32_t dreg) {
    return payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, dreg);
}
Rule& Rule::ip6_saddr(std::uint32_t dreg) {
    return payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16, dreg);
}
Rule& Rule::ip_daddr(std::uint32_t dreg) {
    return payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, dreg);
}
Rule& Rule::ip6_daddr(std::uint32_t dreg) {
    return payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, dreg);
}
Rule& Rule::th_dport(std::uint32_t dreg) {
    return payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, dreg);
}
Rule& Rule::proto_port(std::uint32_t reg) {
    return meta(NFT_META_L4PROTO, reg).th_dport(reg + 1);
}
Rule& Rule::loopback_daddr(bool v4, std::uint32_t reg) {
    if (v4) {
        const std::uint8_t net = 127;  // the first byte of the address
        return ipv4_only()
            .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 1, reg)
            .cmp(reg, NFT_CMP_EQ, &net, 1);
    }
    return ipv6_only().ip6_daddr(reg).cmp(reg, NFT_CMP_EQ, &in6addr_loopback, 16);
}
Rule& Rule::lookup(std::uint32_t sreg, const char* set, std::optional<std::uint32_t> dreg,
                   std::uint32_t flags) {
    auto* e = expr("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    if (dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
    if (flags) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, flags);
    return add(e);
}
Rule& Rule::dnat4(std::uint32_t reg_addr, std::uint32_t reg_port) {
    return dnat(NFPROTO_IPV4, reg_addr, reg_port);
}
Rule& Rule::dnat6(std::uint32_t reg_addr, std::uint32_t reg_port) {
    return dnat(NFPROTO_IPV6, reg_addr, reg_port);
}
Rule& Rule::dnat(std::uint32_t nfproto, std::uint32_t reg_addr, std::uint32_t reg_port) {
    auto* e = expr("nat");
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_port);
    return add(e);
}
Rule& Rule::masquerade() {
    return add(expr("masq"));
}
Rule& Rule::redirect(std::uint32_t reg_port) {
    auto* e = expr("redir");
    nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, reg_port);
    nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
    return add(e);
}
Rule& Rule::fib_daddr_type(std::uint32_t dreg) {
    auto* e = expr("fib");
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, dreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
    return add(e);
}
Rule& Rule::fib_daddr_local(std::uint32_t reg) {
    const std::uint32_t local = RTN_LOCAL;
    return fib_daddr_type(reg).cmp(reg, NFT_CMP_EQ, &local, 4);
}
Rule& Rule::ct_status_dnat(std::uint32_t reg) {
    return ct_any(NFT_CT_STATUS, IPS_DST_NAT, reg);
}
Rule& Rule::ct_state_established_or_related(std::uint32_t reg) {
    return ct_any(NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED),
                  reg);
}
Rule& Rule::ct_any(std::uint32_t key, std::uint32_t mask, std::uint32_t reg) {
    auto* ct = expr("ct");
    nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, reg);
    add(ct);
    std::uint32_t zero = 0;  // host byte order, as the kernel keeps both fields
    auto* bw = expr("bitwise");
    nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, reg);
    nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, reg);
    nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, 4);
    nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
    nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
    add(bw);
    return cmp(reg, NFT_CMP_NEQ, &zero, 4);
}
Rule& Rule::verdict(int code, const char* chain) {
    auto* e = expr("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(code));
    if (chain) nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
    return add(e);
}
Rule& Rule::comment(const std::string& text) {
    auto* ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    if (!ud) throw Error("out of memory for a rule comment");
    nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, text.c_str());
    nftnl_rule_set_data(r_.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                        nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
    return *this;
}
Rule& Rule::counter() {
    return add(expr("counter"));
}
Rule& Rule::add(nftnl_expr* e) {
    nftnl_rule_add_expr(r_.get(), e);  // the rule owns it now
    return *this;
}

// ---- Batch

Batch::Batch(std::uint32_t& seq, const char* table, std::uint32_t nfproto,
             std::optional<std::uint32_t> generation)
    : seq_(seq), table_(table), family_(nfproto), b_(nftnl_batch_alloc(kBatchPage, kBatchPage)) {
    if (!b_) throw Error("out of memory");
    auto* begin = nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
    if (generation) mnl_attr_put_u32(begin, NFNL_BATCH_GENID, htonl(*generation));
    nftnl_batch_update(b_);
}

Batch::~Batch() {
    nftnl_batch_free(b_);
}

nlmsghdr* Batch::begin(std::uint16_t type, std::uint16_t flags, std::string what) {
    if (described_.empty()) first_seq_ = seq_;
    described_.push_back(std::move(what));
    return nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(b_)), type,
                                 static_cast<std::uint16_t>(family_), flags | NLM_F_ACK, seq_++);
}

std::string Batch::table_text() const {
    return std::string("table ") + family_name(family_) + " " + table_;
}

void Batch::end() {
    nftnl_batch_update(b_);
}

void Batch::elements(std::uint16_t type, std::uint16_t flags, const char* set,
                     std::span<const RawElement> elems, const std::string& verb,
                     const std::string& preposition) {
    for (std::size_t at = 0; at < elems.size(); at += kElementsPerMessage) {
        SetPtr s(must(nftnl_set_alloc()));
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table_);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set);
        auto stop = std::min(elems.size(), at + kElementsPerMessage);
        for (auto i = at; i < stop; ++i) {
            auto* e = must(nftnl_set_elem_alloc());
            nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[i].key.data(),
                               static_cast<std::uint32_t>(elems[i].key.size()));
            if (!elems[i].data.empty())
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, elems[i].data.data(),
                                   static_cast<std::uint32_t>(elems[i].data.size()));
            if (elems[i].flags) nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, elems[i].flags);
            if (!elems[i].key_end.empty())
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, elems[i].key_end.data(),
                                   static_cast<std::uint32_t>(elems[i].key_end.size()));
            nftnl_set_elem_add(s.get(), e);
        }
        auto* nlh = begin(
            type, flags,
            verb + " " + std::to_string(stop - at) + " element(s) " + preposition + " set " + set);
        nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
        end();
    }
}

void Batch::finish() {
    nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
    nftnl_batch_update(b_);
}

const std::string& Batch::what(std::uint32_t seq) const {
    static const std::string unknown = "an nftables batch";
    if (seq < first_seq_ || seq - first_seq_ >= described_.size()) return unknown;
    return described_[seq - first_seq_];
}

void send(mnl_socket* nl, Batch& batch, const std::string& unknown_outcome_advice) {
    batch.finish();
    std::vector<iovec> iov(static_cast<std::size_t>(nftnl_batch_iovec_len(batch.get())));
    nftnl_batch_iovec(batch.get(), iov.data(), static_cast<std::uint32_t>(iov.size()));
    std::size_t total = 0;
    for (const auto& v : iov)
        total += v.iov_len;
    int fd = mnl_socket_get_fd(nl);
    // A netlink message larger than the send buffer fails with EMSGSIZE.
    int sndbuf = static_cast<int>(total + 64 * 1024);
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    msghdr msg{};
    msg.msg_name = &kernel;
    msg.msg_namelen = sizeof kernel;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (::sendmsg(fd, &msg, 0) < 0) {
        int err = errno;
        throw Error("cannot send the nftables batch: " + errno_text(err) + no_nftables_hint(err));
    }
    if (auto error = read_acks(nl, batch.messages(), unknown_outcome_advice)) {
        std::string text = batch.what(error->seq) + " in " + batch.table_text() +
                           " failed: " + errno_text(error->err);
        if (!error->detail.empty()) text += " (" + error->detail + ")";
        text += no_nftables_hint(error->err);
        throw std::system_error(error->err, std::generic_category(), text);
    }
}

// ---- Tables, sets, chains, rules

void add_table(Batch& batch, std::uint16_t type, std::uint16_t flags, const std::string& comment) {
    TablePtr t(must(nftnl_table_alloc()));
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, batch.table());
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, batch.family());
    if (!comment.empty()) {
        if (auto* ud = nftnl_udata_buf_alloc(512)) {  // shown by `nft list` as the table's comment
            nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, comment.c_str());
            nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
                                 nftnl_udata_buf_len(ud));
            nftnl_udata_buf_free(ud);
        }
    }
    const char* verb = type == NFT_MSG_DELTABLE ? "deleting" : "creating";
    nftnl_table_nlmsg_build_payload(
        batch.begin(type, flags, std::string(verb) + " " + batch.table_text()), t.get());
    batch.end();
}

void add_sets(Batch& batch, std::span<const SetDef> sets) {
    std::uint32_t id = 0;
    for (const auto& def : sets) {
        SetPtr s(must(nftnl_set_alloc()));
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, batch.table());
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, def.name);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, batch.family());
        nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, def.flags);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, def.key_type);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, def.key_len);
        if (def.flags & NFT_SET_MAP) {
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, def.data_type);
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, def.data_len);
        }
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, ++id);
        if (def.fields[0]) {
            const auto count = static_cast<std::uint32_t>(std::count_if(
                def.fields.begin(), def.fields.end(), [](std::uint8_t f) { return f != 0; }));
            nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, def.fields.data(), count);
        }
        if (auto* ud = nftnl_udata_buf_alloc(64)) {
            nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, def.key_byteorder);
            if ((def.flags & NFT_SET_INTERVAL) && !(def.flags & NFT_SET_CONCAT))
                nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);  // as nft does
            nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                               nftnl_udata_buf_len(ud));
            nftnl_udata_buf_free(ud);
        }
        nftnl_set_nlmsg_build_payload(
            batch.begin(NFT_MSG_NEWSET, NLM_F_CREATE, std::string("creating set ") + def.name),
            s.get());
        batch.end();
    }
}

void add_chains(Batch& batch, std::span<const ChainDef> chains, std::uint16_t flags) {
    static_assert(NLM_F_CREATE == 0x400);
    for (const auto& def : chains) {
        ChainPtr c(must(nftnl_chain_alloc()));
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, batch.table());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, def.name);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, batch.family());
        if (def.hook) {
            nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, def.type);
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, *def.hook);
            nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, def.priority);
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        nftnl_chain_nlmsg_build_payload(
            batch.begin(NFT_MSG_NEWCHAIN, flags, std::string("creating chain ") + def.name),
            c.get());
        batch.end();
    }
}

void flush_chain(Batch& batch, const std::string& chain) {
    RulePtr flush(must(nftnl_rule_alloc()));
    nftnl_rule_set_str(flush.get(), NFTNL_RULE_TABLE, batch.table());
    nftnl_rule_set_str(flush.get(), NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_set_u32(flush.get(), NFTNL_RULE_FAMILY, batch.family());
    nftnl_rule_nlmsg_build_payload(batch.begin(NFT_MSG_DELRULE, 0, "flushing chain " + chain),
                                   flush.get());
    batch.end();
}

void append_rule(Batch& batch, const Rule& rule) {
    nftnl_rule_nlmsg_build_payload(
        batch.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                    std::string("adding a rule to chain ") + rule.chain()),
        rule.get());
    batch.end();
}

void insert_rule(Batch& batch, const Rule& rule) {
    // Without NLM_F_APPEND and a position, the kernel puts it first.
    nftnl_rule_nlmsg_build_payload(
        batch.begin(NFT_MSG_NEWRULE, NLM_F_CREATE,
                    std::string("inserting a rule at the top of chain ") + rule.chain()),
        rule.get());
    batch.end();
}

void delete_rule(Batch& batch, const std::string& chain, std::uint64_t handle) {
    RulePtr r(must(nftnl_rule_alloc()));
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, batch.table());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, batch.family());
    nftnl_rule_set_u64(r.get(), NFTNL_RULE_HANDLE, handle);
    nftnl_rule_nlmsg_build_payload(
        batch.begin(NFT_MSG_DELRULE, 0,
                    "deleting rule " + std::to_string(handle) + " of chain " + chain),
        r.get());
    batch.end();
}

void delete_chain(Batch& batch, const std::string& chain) {
    ChainPtr c(must(nftnl_chain_alloc()));
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, batch.table());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.c_str());
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, batch.family());
    nftnl_chain_nlmsg_build_payload(batch.begin(NFT_MSG_DELCHAIN, 0, "deleting chain " + chain),
                                    c.get());
    batch.end();
}

// ---- Queries

bool query(mnl_socket* nl, const nlmsghdr* request, int (*on_message)(const nlmsghdr*, void*),
           void* data, const std::string& what) {
    const auto portid = mnl_socket_get_portid(nl);
    // A dump the ruleset changed under (NLM_F_DUMP_INTR: iptables, Docker or
    // kube-proxy at work) is read to its end and asked for again; only a whole
    // one reaches `on_message`, so that nothing is counted twice.
    constexpr int kTries = 20;
    for (int attempt = 1;; ++attempt) {
        if (mnl_socket_sendto(nl, request, request->nlmsg_len) < 0) throw_errno("cannot " + what);
        std::vector<std::vector<char>> reply;
        bool interrupted = false, ended = false;
        while (!ended) {
            std::vector<char> buf(256 * 1024);
            ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
            if (n < 0) throw_errno("cannot read the nftables reply");
            buf.resize(static_cast<std::size_t>(n));
            int len = static_cast<int>(n);
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
                 nlh = mnl_nlmsg_next(nlh, &len)) {
                if (nlh->nlmsg_seq != request->nlmsg_seq) continue;
                interrupted = interrupted || (nlh->nlmsg_flags & NLM_F_DUMP_INTR);
                ended = ended || nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR;
            }
            reply.push_back(std::move(buf));
        }
        if (interrupted && attempt < kTries) continue;
        if (interrupted)
            throw Error("cannot " + what + ": the ruleset kept changing while it was read (" +
                        std::to_string(kTries) + " tries); run the command again");
        for (const auto& buf : reply) {
            int rc =
                mnl_cb_run(buf.data(), buf.size(), request->nlmsg_seq, portid, on_message, data);
            if (rc == MNL_CB_STOP) return true;
            if (rc < 0) {
                if (errno == ENOENT) return false;
                throw_errno("cannot " + what);
            }
        }
        return true;
    }
}

std::optional<std::string> table_comment(mnl_socket* nl, std::uint32_t& seq, const char* table,
                                         std::uint32_t nfproto) {
    char buf[256];
    TablePtr t(must(nftnl_table_alloc()));
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table);
    // Not a dump: the ack after the table ends the reply.
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, static_cast<std::uint16_t>(nfproto),
                                      NLM_F_ACK, ++seq);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    std::string comment;
    auto read_comment = [](const nlmsghdr* msg, void* data) -> int {
        TablePtr table(must(nftnl_table_alloc()));
        if (nftnl_table_nlmsg_parse(msg, table.get()) < 0) return MNL_CB_ERROR;
        std::uint32_t len = 0;
        const void* ud = nftnl_table_get_data(table.get(), NFTNL_TABLE_USERDATA, &len);
        if (!ud) return MNL_CB_OK;
        auto on_attr = [](const nftnl_udata* attr, void* out) -> int {
            if (nftnl_udata_type(attr) == NFTNL_UDATA_TABLE_COMMENT && nftnl_udata_len(attr) > 0)
                static_cast<std::string*>(out)->assign(
                    static_cast<const char*>(nftnl_udata_get(attr)),
                    nftnl_udata_len(attr) - 1);  // without the NUL
            return 0;
        };
        nftnl_udata_parse(ud, len, on_attr, data);
        return MNL_CB_OK;
    };
    if (!query(nl, nlh, read_comment, &comment,
               std::string("query table ") + family_name(nfproto) + " " + table))
        return std::nullopt;
    return comment;
}

std::map<std::string, std::size_t> rule_counts(mnl_socket* nl, std::uint32_t& seq,
                                               const char* table) {
    std::map<std::string, std::size_t> counts;
    char buf[256];
    RulePtr filter(must(nftnl_rule_alloc()));
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, table);
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, ++seq);
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    auto count = [](const nlmsghdr* msg, void* data) -> int {
        RulePtr r(must(nftnl_rule_alloc()));
        if (nftnl_rule_nlmsg_parse(msg, r.get()) < 0) return MNL_CB_ERROR;
        if (const char* chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN))
            ++(*static_cast<std::map<std::string, std::size_t>*>(data))[chain];
        return MNL_CB_OK;
    };
    if (!query(nl, nlh, count, &counts, std::string("list the rules of table inet ") + table))
        return {};
    return counts;
}

std::uint32_t generation(mnl_socket* nl, std::uint32_t& seq) {
    char buf[128];
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, ++seq);
    std::optional<std::uint32_t> id;
    auto read = [](const nlmsghdr* msg, void* out) -> int {
        std::unique_ptr<nftnl_gen, decltype(&nftnl_gen_free)> gen(nftnl_gen_alloc(),
                                                                  &nftnl_gen_free);
        if (!gen || nftnl_gen_nlmsg_parse(msg, gen.get()) < 0) return MNL_CB_ERROR;
        *static_cast<std::optional<std::uint32_t>*>(out) =
            nftnl_gen_get_u32(gen.get(), NFTNL_GEN_ID);
        return MNL_CB_OK;
    };
    query(nl, nlh, read, &id, "read the ruleset's generation");
    if (!id) throw Error("cannot read the ruleset's generation: no answer");
    return *id;
}

void for_each_chain(mnl_socket* nl, std::uint32_t& seq,
                    const std::function<void(const nftnl_chain*)>& visit, const char* table,
                    std::uint32_t nfproto) {
    char buf[256];
    auto* nlh = nftnl_nlmsg_build_hdr(
        buf, NFT_MSG_GETCHAIN,
        static_cast<std::uint16_t>(table ? nfproto : std::uint32_t{NFPROTO_UNSPEC}), NLM_F_DUMP,
        ++seq);
    if (table) {
        ChainPtr filter(must(nftnl_chain_alloc()));
        nftnl_chain_set_str(filter.get(), NFTNL_CHAIN_TABLE, table);
        nftnl_chain_nlmsg_build_payload(nlh, filter.get());
    }
    auto each = [](const nlmsghdr* msg, void* data) -> int {
        ChainPtr c(must(nftnl_chain_alloc()));
        if (nftnl_chain_nlmsg_parse(msg, c.get()) < 0) return MNL_CB_ERROR;
        (*static_cast<const std::function<void(const nftnl_chain*)>*>(data))(c.get());
        return MNL_CB_OK;
    };
    query(nl, nlh, each, const_cast<std::function<void(const nftnl_chain*)>*>(&visit),
          "list the nftables chains");
}

void for_each_rule(mnl_socket* nl, std::uint32_t& seq, std::uint32_t nfproto, const char* table,
                   const char* chain, const std::function<void(const nftnl_rule*)>& visit) {
    char buf[512];
    RulePtr filter(must(nftnl_rule_alloc()));
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, table);
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_CHAIN, chain);
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, static_cast<std::uint16_t>(nfproto),
                                      NLM_F_DUMP, ++seq);
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    auto each = [](const nlmsghdr* msg, void* data) -> int {
        RulePtr r(must(nftnl_rule_alloc()));
        if (nftnl_rule_nlmsg_parse(msg, r.get()) < 0) return MNL_CB_ERROR;
        (*static_cast<const std::function<void(const nftnl_rule*)>*>(data))(r.get());
        return MNL_CB_OK;
    };
    query(nl, nlh, each, const_cast<std::function<void(const nftnl_rule*)>*>(&visit),
          std::string("list chain ") + chain + " of table " + family_name(nfproto) + " " + table);
}

void for_each_element(mnl_socket* nl, std::uint32_t& seq, const char* table, const std::string& set,
                      const std::function<void(nftnl_set_elem*)>& visit) {
    char buf[512];
    SetPtr filter(must(nftnl_set_alloc()));
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, table);
    nftnl_set_set_str(filter.get(), NFTNL_SET_NAME, set.c_str());
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, ++seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, filter.get());
    auto collect = [](const nlmsghdr* msg, void* data) -> int {
        SetPtr s(must(nftnl_set_alloc()));
        if (nftnl_set_elems_nlmsg_parse(msg, s.get()) < 0) return MNL_CB_ERROR;
        nftnl_set_elem_foreach(
            s.get(),
            [](nftnl_set_elem* e, void* out) -> int {
                (*static_cast<const std::function<void(nftnl_set_elem*)>*>(out))(e);
                return 0;
            },
            data);
        return MNL_CB_OK;
    };
    query(nl, nlh, collect, const_cast<std::function<void(nftnl_set_elem*)>*>(&visit),
          "list set " + set + " of table inet " + table);
}

std::set<std::vector<std::uint8_t>> element_keys(mnl_socket* nl, std::uint32_t& seq,
                                                 const char* table, const std::string& set) {
    std::set<std::vector<std::uint8_t>> keys;
    for_each_element(nl, seq, table, set, [&](nftnl_set_elem* e) {
        std::uint32_t len = 0;
        if (auto* key =
                static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len)))
            keys.insert({key, key + len});
    });
    return keys;
}

}  // namespace portpub::nft
