#include "portpub/forward_firewall.hpp"

// glibc before the kernel headers, which step aside for it.
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
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
#include <time.h>

#include <functional>
#include <memory>
#include <optional>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// nftables data type ids, as the nft tool numbers them, so that `nft list`
// shows the maps with their types.
constexpr std::uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeProto = 12, kTypeService = 13;
constexpr std::uint32_t concat(std::uint32_t a, std::uint32_t b) {
    return a << 6 | b;
}
constexpr std::uint32_t kBigEndian = 2;  // nft's byte order name, in a set's user data

// Registers: NFT_REG_1 is 128 bits, its 32-bit parts NFT_REG32_00..03; each
// field of a concatenation takes one 32-bit part (an IPv6 address, four).
constexpr std::uint32_t kR1 = NFT_REG_1, kR32_0 = NFT_REG32_00, kR32_1 = NFT_REG32_01,
                        kR32_4 = NFT_REG32_04;

// The priority of iptables' nat PREROUTING/OUTPUT is -100 (dstnat); one
// before it, forwards are decided before the containers' table looks.
constexpr int kPriorityDstNat = -101, kPrioritySrcNat = 100;
constexpr std::size_t kElementsPerMessage = 1000;  // keeps one message's nest under 64 KiB

struct SetDef {
    ForwardSet set;
    std::uint32_t key_type, key_len, data_type, data_len;  // data_len 0: a set
};
const SetDef kSets[] = {
    {ForwardSet::redirect, concat(kTypeProto, kTypeService), 8, kTypeService, 2},
    {ForwardSet::dnat4, concat(kTypeProto, kTypeService), 8, concat(kTypeIpv4, kTypeService), 8},
    {ForwardSet::dnat6, concat(kTypeProto, kTypeService), 8, concat(kTypeIpv6, kTypeService), 20},
    {ForwardSet::targets4, concat(concat(kTypeIpv4, kTypeProto), kTypeService), 12, 0, 0},
    {ForwardSet::targets6, concat(concat(kTypeIpv6, kTypeProto), kTypeService), 24, 0, 0},
};

struct ChainDef {
    const char* name;
    std::optional<std::uint32_t> hook;  // nat base chains
    int priority;
};
const ChainDef kChains[] = {
    {"forwards", std::nullopt, 0},  // before the chains that jump to them
    {"loopback", std::nullopt, 0},
    {"prerouting", NF_INET_PRE_ROUTING, kPriorityDstNat},
    {"output", NF_INET_LOCAL_OUT, kPriorityDstNat},
    {"postrouting", NF_INET_POST_ROUTING, kPrioritySrcNat},
};

template <class T, void (*Free)(const T*)>
struct Freer {
    void operator()(T* p) const { Free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, Freer<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, Freer<nftnl_chain, nftnl_chain_free>>;
using SetPtr = std::unique_ptr<nftnl_set, Freer<nftnl_set, nftnl_set_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, Freer<nftnl_rule, nftnl_rule_free>>;

// A rule as its expressions, in the order the kernel runs them.
class Rule {
  public:
    explicit Rule(const char* chain) : r_(must(nftnl_rule_alloc())) {
        nftnl_rule_set_str(r_.get(), NFTNL_RULE_TABLE, kForwardTable);
        nftnl_rule_set_str(r_.get(), NFTNL_RULE_CHAIN, chain);
        nftnl_rule_set_u32(r_.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    }
    Rule& family(std::uint8_t nfproto) { return meta(NFT_META_NFPROTO, kR1).cmp(kR1, &nfproto, 1); }
    Rule& meta(std::uint32_t key, std::uint32_t dreg) {
        auto* e = expr("meta");
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
        return add(e);
    }
    Rule& cmp(std::uint32_t sreg, const void* data, std::uint32_t len,
              std::uint32_t op = NFT_CMP_EQ) {
        auto* e = expr("cmp");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        return add(e);
    }
    Rule& payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg) {
        auto* e = expr("payload");
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
        return add(e);
    }
    // meta l4proto . th dport, in the 32-bit registers `reg` and `reg + 1`.
    Rule& proto_port(std::uint32_t reg) {
        return meta(NFT_META_L4PROTO, reg).payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg + 1);
    }
    Rule& lookup(std::uint32_t sreg, ForwardSet set, std::optional<std::uint32_t> dreg = {}) {
        auto* e = expr("lookup");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, forward_set_name(set));
        if (dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
        return add(e);
    }
    Rule& dnat(std::uint32_t nfproto, std::uint32_t reg_addr, std::uint32_t reg_port) {
        auto* e = expr("nat");
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_port);
        return add(e);
    }
    Rule& redirect(std::uint32_t reg_port) {
        auto* e = expr("redir");
        nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, reg_port);
        nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        return add(e);
    }
    Rule& masquerade() { return add(expr("masq")); }
    Rule& fib_daddr_local() {
        const std::uint32_t local = RTN_LOCAL;
        auto* e = expr("fib");
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, kR1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
        add(e);
        return cmp(kR1, &local, 4);
    }
    Rule& ct_status_dnat() {
        const std::uint32_t mask = IPS_DST_NAT, zero = 0;
        auto* ct = expr("ct");
        nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
        nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, kR1);
        add(ct);
        auto* bw = expr("bitwise");
        nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, kR1);
        nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, kR1);
        nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, 4);
        nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
        nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
        add(bw);
        return cmp(kR1, &zero, 4, NFT_CMP_NEQ);
    }
    // ip daddr 127.0.0.0/8, or ip6 daddr ::1.
    Rule& loopback_daddr(bool v4) {
        if (v4) {
            const std::uint8_t net = 127;
            return family(NFPROTO_IPV4)
                .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 1, kR1)
                .cmp(kR1, &net, 1);
        }
        return family(NFPROTO_IPV6)
            .payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, kR1)
            .cmp(kR1, &in6addr_loopback, 16);
    }
    Rule& verdict(int code, const char* chain = nullptr) {
        auto* e = expr("immediate");
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(code));
        if (chain) nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
        return add(e);
    }
    nftnl_rule* get() const { return r_.get(); }

  private:
    static nftnl_expr* expr(const char* name) {
        auto* e = nftnl_expr_alloc(name);
        if (!e) throw Error(std::string("out of memory for nft expression ") + name);
        return e;
    }
    Rule& add(nftnl_expr* e) {
        nftnl_rule_add_expr(r_.get(), e);  // the rule owns it now
        return *this;
    }
    RulePtr r_;
};

std::vector<Rule> rules() {
    std::vector<Rule> out;
    auto add = [&](const char* chain) -> Rule& { return out.emplace_back(chain); };
    auto redirect = [&](const char* chain) {
        add(chain).proto_port(kR32_0).lookup(kR1, ForwardSet::redirect, kR1).redirect(kR1);
    };
    add("forwards")
        .family(NFPROTO_IPV4)
        .proto_port(kR32_0)
        .lookup(kR1, ForwardSet::dnat4, kR1)
        .dnat(NFPROTO_IPV4, kR1, kR32_1);
    add("forwards")
        .family(NFPROTO_IPV6)
        .proto_port(kR32_0)
        .lookup(kR1, ForwardSet::dnat6, kR1)
        .dnat(NFPROTO_IPV6, kR1, kR32_4);
    redirect("forwards");
    // Loopback is never DNATed (that would need route_localnet, CVE-2020-8558):
    // from outside it is a martian, from this host only a local forward's
    // redirect (loopback to loopback) serves it; remote forwards' loopback
    // ports are the forward proxy's listeners.
    redirect("loopback");
    for (bool v4 : {true, false})
        add("prerouting").loopback_daddr(v4).verdict(NFT_RETURN);
    // No interface match: other hosts and this host reach every address alike.
    add("prerouting").fib_daddr_local().verdict(NFT_JUMP, "forwards");
    for (bool v4 : {true, false})
        add("output").loopback_daddr(v4).verdict(NFT_GOTO, "loopback");
    add("output").fib_daddr_local().verdict(NFT_JUMP, "forwards");
    add("postrouting")
        .family(NFPROTO_IPV4)
        .ct_status_dnat()
        .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, kR1)
        .proto_port(kR32_1)
        .lookup(kR1, ForwardSet::targets4)
        .masquerade();
    add("postrouting")
        .family(NFPROTO_IPV6)
        .ct_status_dnat()
        .payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, kR1)
        .proto_port(kR32_4)
        .lookup(kR1, ForwardSet::targets6)
        .masquerade();
    return out;
}

class Batch {
  public:
    explicit Batch(std::uint32_t& seq) : seq_(seq), b_(nftnl_batch_alloc(1 << 18, 1 << 18)) {
        if (!b_) throw Error("out of memory");
        nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
        nftnl_batch_update(b_);
    }
    ~Batch() { nftnl_batch_free(b_); }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    nlmsghdr* begin(std::uint16_t type, std::uint16_t flags, std::string what) {
        if (what_.empty()) first_ = seq_;
        what_.push_back(std::move(what));
        return nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(b_)), type, NFPROTO_INET,
                                     flags | NLM_F_ACK, seq_++);
    }
    void end() { nftnl_batch_update(b_); }
    void finish() {
        nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
        nftnl_batch_update(b_);
    }
    std::size_t messages() const { return what_.size(); }
    std::string what(std::uint32_t seq) const {
        if (seq < first_ || seq - first_ >= what_.size()) return "an nftables batch";
        return what_[seq - first_];
    }
    nftnl_batch* get() const { return b_; }

  private:
    std::uint32_t& seq_;
    nftnl_batch* b_;
    std::uint32_t first_ = 0;
    std::vector<std::string> what_;
};

TablePtr table() {
    TablePtr t(must(nftnl_table_alloc()));
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kForwardTable);
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    return t;
}

void add_table(Batch& b, const char* verb, std::uint16_t type, std::uint16_t flags) {
    auto t = table();
    nftnl_table_nlmsg_build_payload(
        b.begin(type, flags, std::string(verb) + " table inet " + kForwardTable), t.get());
    b.end();
}

void add_contents(Batch& b, const std::vector<ForwardElement>& elements) {
    std::uint32_t id = 0;
    for (const auto& def : kSets) {
        SetPtr s(must(nftnl_set_alloc()));
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kForwardTable);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, forward_set_name(def.set));
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, def.data_len ? NFT_SET_MAP : 0);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, def.key_type);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, def.key_len);
        if (def.data_len) {
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, def.data_type);
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, def.data_len);
        }
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, ++id);
        if (auto* ud = nftnl_udata_buf_alloc(64)) {
            nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, kBigEndian);
            nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                               nftnl_udata_buf_len(ud));
            nftnl_udata_buf_free(ud);
        }
        nftnl_set_nlmsg_build_payload(
            b.begin(NFT_MSG_NEWSET, NLM_F_CREATE,
                    std::string("creating set ") + forward_set_name(def.set)),
            s.get());
        b.end();
    }
    for (const auto& def : kChains) {
        ChainPtr c(must(nftnl_chain_alloc()));
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, kForwardTable);
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, def.name);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        if (def.hook) {
            nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "nat");
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, *def.hook);
            nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, def.priority);
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        nftnl_chain_nlmsg_build_payload(
            b.begin(NFT_MSG_NEWCHAIN, NLM_F_CREATE, std::string("creating chain ") + def.name),
            c.get());
        b.end();
    }
    for (const auto& rule : rules()) {
        nftnl_rule_nlmsg_build_payload(
            b.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                    std::string("adding a rule to chain ") +
                        nftnl_rule_get_str(rule.get(), NFTNL_RULE_CHAIN)),
            rule.get());
        b.end();
    }
    for (ForwardSet set : kForwardSets) {
        std::vector<const ForwardElement*> mine;
        for (const auto& e : elements)
            if (e.set == set) mine.push_back(&e);
        for (std::size_t at = 0; at < mine.size(); at += kElementsPerMessage) {
            SetPtr s(must(nftnl_set_alloc()));
            nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kForwardTable);
            nftnl_set_set_str(s.get(), NFTNL_SET_NAME, forward_set_name(set));
            const auto stop = std::min(mine.size(), at + kElementsPerMessage);
            for (auto i = at; i < stop; ++i) {
                auto* e = must(nftnl_set_elem_alloc());
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, mine[i]->key.data(),
                                   static_cast<std::uint32_t>(mine[i]->key.size()));
                if (!mine[i]->data.empty())
                    nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, mine[i]->data.data(),
                                       static_cast<std::uint32_t>(mine[i]->data.size()));
                nftnl_set_elem_add(s.get(), e);
            }
            nftnl_set_elems_nlmsg_build_payload(
                b.begin(NFT_MSG_NEWSETELEM, NLM_F_CREATE,
                        "adding " + std::to_string(stop - at) + " element(s) to set " +
                            forward_set_name(set)),
                s.get());
            b.end();
        }
    }
}

std::string hint(int err) {
    if (err == EOPNOTSUPP || err == EPROTONOSUPPORT || err == EAFNOSUPPORT)
        return " (this kernel has no nftables support: load the nf_tables module)";
    if (err == EPERM) return " (portpub needs CAP_NET_ADMIN: run it as root)";
    return "";
}

// Sends the batch in one sendmsg (one transaction) and reads every ack;
// throws Error with the first failure.
void send(mnl_socket* nl, Batch& b) {
    b.finish();
    std::vector<iovec> iov(static_cast<std::size_t>(nftnl_batch_iovec_len(b.get())));
    nftnl_batch_iovec(b.get(), iov.data(), static_cast<std::uint32_t>(iov.size()));
    const int fd = mnl_socket_get_fd(nl);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    msghdr msg{};
    msg.msg_name = &kernel;
    msg.msg_namelen = sizeof kernel;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (::sendmsg(fd, &msg, 0) < 0) {
        const int err = errno;
        throw Error("cannot send the nftables batch: " + errno_text(err) + hint(err));
    }
    std::vector<char> buf(64 * 1024);
    std::size_t seen = 0;
    std::optional<std::pair<int, std::uint32_t>> failed;
    pollfd pfd{fd, POLLIN, 0};
    while (seen < b.messages()) {
        const int ready = ::poll(&pfd, 1, 1000);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            if (failed) break;
            throw Error("the kernel did not acknowledge the nftables batch of table inet " +
                        std::string(kForwardTable) + "; check it with nft list table inet " +
                        kForwardTable + " and run portpub forward apply again");
        }
        const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) throw_errno("cannot read the nftables reply");
        auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
        int len = static_cast<int>(n);
        for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != NLMSG_ERROR) continue;
            ++seen;
            auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
            if (e->error != 0 && !failed) failed = std::pair(-e->error, nlh->nlmsg_seq);
        }
    }
    if (failed)
        throw Error(b.what(failed->second) + " in table inet " + kForwardTable +
                    " failed: " + errno_text(failed->first) + hint(failed->first));
}

}  // namespace

ForwardFirewall::ForwardFirewall() : seq_(static_cast<std::uint32_t>(::time(nullptr))) {
    nl_ = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl_) {
        const int err = errno;
        throw Error("cannot open a netfilter netlink socket: " + errno_text(err) + hint(err));
    }
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
        const int err = errno;
        mnl_socket_close(nl_);
        throw_errno("cannot bind the netfilter netlink socket", err);
    }
    int one = 1;
    ::setsockopt(mnl_socket_get_fd(nl_), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
}

ForwardFirewall::~ForwardFirewall() {
    mnl_socket_close(nl_);
}

void ForwardFirewall::apply(const std::vector<ForwardElement>& elements) {
    Batch b(seq_);
    // Adding the table first makes the delete succeed whether it existed or
    // not (a flushed ruleset, a first apply); the kernel runs the whole batch
    // as one transaction.
    add_table(b, "creating", NFT_MSG_NEWTABLE, NLM_F_CREATE);
    add_table(b, "deleting", NFT_MSG_DELTABLE, 0);
    if (!elements.empty()) {
        add_table(b, "creating", NFT_MSG_NEWTABLE, NLM_F_CREATE);
        add_contents(b, elements);
    }
    send(nl_, b);
}

namespace {

struct Query {
    mnl_socket* nl;
    std::uint32_t& seq;
    // Sends `request` and hands each reply message to `on`; false when the
    // kernel says the object does not exist.
    bool run(const nlmsghdr* request, mnl_cb_t on, void* data, const std::string& what) {
        if (mnl_socket_sendto(nl, request, request->nlmsg_len) < 0) throw_errno("cannot " + what);
        const auto portid = mnl_socket_get_portid(nl);
        std::vector<char> buf(256 * 1024);
        for (;;) {
            const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
            if (n < 0) throw_errno("cannot read the nftables reply");
            const int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), request->nlmsg_seq,
                                      portid, on, data);
            if (rc == MNL_CB_STOP) return true;
            if (rc < 0) {
                if (errno == ENOENT) return false;
                throw_errno("cannot " + what);
            }
        }
    }
};

}  // namespace

bool ForwardFirewall::table_exists() {
    char buf[256];
    auto t = table();
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++seq_);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    auto ignore = [](const nlmsghdr*, void*) -> int { return MNL_CB_OK; };
    return Query{nl_, seq_}.run(nlh, ignore, nullptr,
                                std::string("query table inet ") + kForwardTable);
}

std::set<std::vector<std::uint8_t>> ForwardFirewall::keys(ForwardSet set) {
    std::set<std::vector<std::uint8_t>> out;
    char buf[512];
    SetPtr filter(must(nftnl_set_alloc()));
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, kForwardTable);
    nftnl_set_set_str(filter.get(), NFTNL_SET_NAME, forward_set_name(set));
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, ++seq_);
    nftnl_set_elems_nlmsg_build_payload(nlh, filter.get());
    auto collect = [](const nlmsghdr* msg, void* data) -> int {
        SetPtr s(must(nftnl_set_alloc()));
        if (nftnl_set_elems_nlmsg_parse(msg, s.get()) < 0) return MNL_CB_ERROR;
        nftnl_set_elem_foreach(
            s.get(),
            [](nftnl_set_elem* e, void* keys) -> int {
                std::uint32_t len = 0;
                if (auto* k = static_cast<const std::uint8_t*>(
                        nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len)))
                    static_cast<std::set<std::vector<std::uint8_t>>*>(keys)->insert({k, k + len});
                return 0;
            },
            data);
        return MNL_CB_OK;
    };
    Query{nl_, seq_}.run(
        nlh, collect, &out,
        std::string("list set ") + forward_set_name(set) + " of table inet " + kForwardTable);
    return out;
}

}  // namespace portpub
