#include "portpub/nft_firewall.hpp"

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
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// nftables data type ids (as the nft tool numbers them), so that
// `nft list ruleset` shows the maps with their real types.
constexpr std::uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeProto = 12, kTypeService = 13,
                        kTypeIfname = 41;
constexpr std::uint32_t concat(std::uint32_t a, std::uint32_t b) {
    return a << 6 | b;
}

// Registers: concatenations start at the 128-bit register 1, whose 32-bit
// parts are 8, 9, 10, 11; each field of a concatenation takes one of them.
constexpr std::uint32_t kReg1 = NFT_REG_1, kReg2 = NFT_REG_2, kReg32_1 = NFT_REG32_01,
                        kReg32_2 = NFT_REG32_02, kReg32_4 = NFT_REG32_04, kReg32_5 = NFT_REG32_05;

constexpr std::size_t kElementsPerMessage = 1000;  // keeps one message's nest under 64 KiB
constexpr std::uint32_t kBatchPage = 256 * 1024;

const char* const kSetNets = "nets4";
const char* const kSetNets6 = "nets6";
const char* const kSetBridges = "bridges";
const char* const kSetIsolated = "isolated4";
const char* const kSetIsolated6 = "isolated6";
const char* const kNetworkSets[] = {kSetNets, kSetNets6, kSetBridges, kSetIsolated, kSetIsolated6};

struct RuleFree {
    void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
struct SetFree {
    void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
struct ChainFree {
    void operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
};
struct TableFree {
    void operator()(nftnl_table* t) const { nftnl_table_free(t); }
};
using SetPtr = std::unique_ptr<nftnl_set, SetFree>;

// A rule as a chain of expressions, built in the order the kernel runs them.
class Rule {
  public:
    explicit Rule(const char* chain) : r_(must(nftnl_rule_alloc())) {
        nftnl_rule_set_str(r_.get(), NFTNL_RULE_TABLE, kTableName);
        nftnl_rule_set_str(r_.get(), NFTNL_RULE_CHAIN, chain);
        nftnl_rule_set_u32(r_.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    }
    Rule& ipv4_only() { return family(NFPROTO_IPV4); }
    Rule& ipv6_only() { return family(NFPROTO_IPV6); }
    Rule& family(std::uint8_t nfproto) {
        return meta(NFT_META_NFPROTO, kReg1).cmp(kReg1, NFT_CMP_EQ, &nfproto, 1);
    }
    Rule& tcp_only() {
        std::uint8_t tcp = IPPROTO_TCP;
        return meta(NFT_META_L4PROTO, kReg1).cmp(kReg1, NFT_CMP_EQ, &tcp, 1);
    }
    Rule& meta(std::uint32_t key, std::uint32_t dreg) {
        auto* e = expr("meta");
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
        return add(e);
    }
    Rule& cmp(std::uint32_t sreg, std::uint32_t op, const void* data, std::uint32_t len) {
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
    Rule& ip_saddr(std::uint32_t dreg) { return payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, dreg); }
    Rule& ip6_saddr(std::uint32_t dreg) { return payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16, dreg); }
    Rule& ip_daddr(std::uint32_t dreg) { return payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, dreg); }
    Rule& ip6_daddr(std::uint32_t dreg) {
        return payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, dreg);
    }
    Rule& th_dport(std::uint32_t dreg) { return payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, dreg); }
    Rule& lookup(std::uint32_t sreg, const char* set, std::optional<std::uint32_t> dreg = {},
                 std::uint32_t flags = 0) {
        auto* e = expr("lookup");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
        if (dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
        if (flags) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, flags);
        return add(e);
    }
    Rule& dnat4(std::uint32_t reg_addr, std::uint32_t reg_port) {
        return dnat(NFPROTO_IPV4, reg_addr, reg_port);
    }
    Rule& dnat6(std::uint32_t reg_addr, std::uint32_t reg_port) {
        return dnat(NFPROTO_IPV6, reg_addr, reg_port);
    }
    Rule& dnat(std::uint32_t nfproto, std::uint32_t reg_addr, std::uint32_t reg_port) {
        auto* e = expr("nat");
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_port);
        return add(e);
    }
    Rule& masquerade() { return add(expr("masq")); }
    // redirect to :port, the port taken from a register (a map lookup).
    Rule& redirect(std::uint32_t reg_port) {
        auto* e = expr("redir");
        nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, reg_port);
        nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        return add(e);
    }
    Rule& fib_daddr_type(std::uint32_t dreg) {
        auto* e = expr("fib");
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, dreg);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
        return add(e);
    }
    Rule& ct_status_dnat(std::uint32_t reg) { return ct_any(NFT_CT_STATUS, IPS_DST_NAT, reg); }
    // ct state established,related
    Rule& ct_state_established_or_related(std::uint32_t reg) {
        return ct_any(NFT_CT_STATE,
                      NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), reg);
    }
    // The conntrack field `key` has one of the bits of `mask` set.
    Rule& ct_any(std::uint32_t key, std::uint32_t mask, std::uint32_t reg) {
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
    std::unique_ptr<nftnl_rule, RuleFree> r_;
};

// The rules of each chain, in order.
std::map<std::string, std::vector<Rule>> base_rules() {
    std::map<std::string, std::vector<Rule>> chains;
    const std::uint32_t local = RTN_LOCAL;
    const std::uint8_t loopback_net = 127;
    auto add = [&](const char* chain) -> Rule& { return chains[chain].emplace_back(chain); };

    // IPv6 TCP to a published port goes to the container's proxy (the
    // container has IPv4 only): published on that address, or on every one.
    auto v6_to_proxy = [&](const char* chain) {
        add(chain)
            .tcp_only()
            .ipv6_only()
            .ip6_daddr(kReg1)
            .meta(NFT_META_L4PROTO, kReg2)
            .th_dport(kReg32_5)
            .lookup(kReg1, map_name(NatMap::proxy6addr), kReg1)
            .redirect(kReg1);
        add(chain)
            .tcp_only()
            .ipv6_only()
            .meta(NFT_META_L4PROTO, kReg1)
            .th_dport(kReg32_1)
            .lookup(kReg1, map_name(NatMap::proxy6), kReg1)
            .redirect(kReg1);
    };

    add("publish")
        .ipv4_only()
        .ip_daddr(kReg1)
        .meta(NFT_META_L4PROTO, kReg32_1)
        .th_dport(kReg32_2)
        .lookup(kReg1, map_name(NatMap::bound4), kReg1)
        .dnat4(kReg1, kReg32_1);
    add("publish")
        .ipv4_only()
        .meta(NFT_META_L4PROTO, kReg1)
        .th_dport(kReg32_1)
        .lookup(kReg1, map_name(NatMap::wildcard4), kReg1)
        .dnat4(kReg1, kReg32_1);
    // IPv6 to a container with an IPv6 address: DNAT, as for IPv4. The data
    // (address . port) fills register 1 and the 32-bit register after it.
    add("publish")
        .ipv6_only()
        .ip6_daddr(kReg1)
        .meta(NFT_META_L4PROTO, kReg2)
        .th_dport(kReg32_5)
        .lookup(kReg1, map_name(NatMap::bound6), kReg1)
        .dnat6(kReg1, kReg32_4);
    add("publish")
        .ipv6_only()
        .meta(NFT_META_L4PROTO, kReg1)
        .th_dport(kReg32_1)
        .lookup(kReg1, map_name(NatMap::wildcard6), kReg1)
        .dnat6(kReg1, kReg32_4);
    v6_to_proxy("publish");

    // Loopback addresses never reach `publish`: DNAT of 127.0.0.0/8 would
    // need route_localnet. From outside they are martians the kernel drops;
    // from this host they go to the proxy. `goto`: nothing after sees them.
    auto loopback = [&](const char* chain, bool from_outside) {
        Rule& v4 = add(chain)
                       .ipv4_only()
                       .payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 1, kReg1)
                       .cmp(kReg1, NFT_CMP_EQ, &loopback_net, 1);
        from_outside ? v4.verdict(NFT_RETURN) : v4.verdict(NFT_GOTO, "loopback");
        Rule& v6 =
            add(chain).ipv6_only().ip6_daddr(kReg1).cmp(kReg1, NFT_CMP_EQ, &in6addr_loopback, 16);
        from_outside ? v6.verdict(NFT_RETURN) : v6.verdict(NFT_GOTO, "loopback");
    };
    // fib daddr type local jump publish: traffic to any address of this host.
    auto to_local_address = [&](Rule& r) {
        r.fib_daddr_type(kReg1).cmp(kReg1, NFT_CMP_EQ, &local, 4).verdict(NFT_JUMP, "publish");
    };
    loopback("prerouting", true);
    to_local_address(add("prerouting"));
    loopback("output", false);
    to_local_address(add("output"));

    // Loopback TCP to published ports goes to the container's proxy.
    add("loopback")
        .tcp_only()
        .ipv4_only()
        .ip_daddr(kReg1)
        .meta(NFT_META_L4PROTO, kReg32_1)
        .th_dport(kReg32_2)
        .lookup(kReg1, map_name(NatMap::proxy4addr), kReg1)
        .redirect(kReg1);
    add("loopback")
        .tcp_only()
        .ipv4_only()
        .meta(NFT_META_L4PROTO, kReg1)
        .th_dport(kReg32_1)
        .lookup(kReg1, map_name(NatMap::proxy4), kReg1)
        .redirect(kReg1);
    v6_to_proxy("loopback");

    add("postrouting")
        .ipv4_only()
        .ct_status_dnat(kReg1)
        .ip_saddr(kReg1)
        .lookup(kReg1, kSetNets)
        .ip_daddr(kReg1)
        .lookup(kReg1, kSetNets)
        .masquerade();
    add("postrouting")
        .ipv4_only()
        .ip_saddr(kReg1)
        .lookup(kReg1, kSetNets)
        .meta(NFT_META_OIFNAME, kReg1)
        .lookup(kReg1, kSetBridges, {}, NFT_LOOKUP_F_INV)
        .masquerade();
    add("postrouting")
        .ipv6_only()
        .ct_status_dnat(kReg1)
        .ip6_saddr(kReg1)
        .lookup(kReg1, kSetNets6)
        .ip6_daddr(kReg1)
        .lookup(kReg1, kSetNets6)
        .masquerade();
    add("postrouting")
        .ipv6_only()
        .ip6_saddr(kReg1)
        .lookup(kReg1, kSetNets6)
        .meta(NFT_META_OIFNAME, kReg2)
        .lookup(kReg2, kSetBridges, {}, NFT_LOOKUP_F_INV)
        .masquerade();

    // A network portpub made is closed to traffic routed in from elsewhere,
    // as Docker's networks are: only replies, published ports (DNAT) and its
    // own containers (through its bridge, seen here when br_netfilter is on)
    // reach its containers. `ip daddr . oifname`: to one of its containers,
    // through its bridge.
    add("forward")
        .ipv4_only()
        .ip_daddr(kReg1)
        .meta(NFT_META_OIFNAME, kReg32_1)
        .lookup(kReg1, kSetIsolated)
        .verdict(NFT_GOTO, "isolation");
    add("forward")
        .ipv6_only()
        .ip6_daddr(kReg1)
        .meta(NFT_META_OIFNAME, kReg2)
        .lookup(kReg1, kSetIsolated6)
        .verdict(NFT_GOTO, "isolation");
    add("isolation").ct_state_established_or_related(kReg1).verdict(NF_ACCEPT);
    add("isolation").ct_status_dnat(kReg1).verdict(NF_ACCEPT);
    add("isolation")
        .ipv4_only()
        .ip_daddr(kReg1)
        .meta(NFT_META_IIFNAME, kReg32_1)
        .lookup(kReg1, kSetIsolated)
        .verdict(NF_ACCEPT);
    add("isolation")
        .ipv6_only()
        .ip6_daddr(kReg1)
        .meta(NFT_META_IIFNAME, kReg2)
        .lookup(kReg1, kSetIsolated6)
        .verdict(NF_ACCEPT);
    add("isolation").verdict(NF_DROP);
    return chains;
}

// nft's byte order names, kept in a set's user data so that `nft list` can
// print a key it cannot infer, such as an interface name.
constexpr std::uint32_t kHostEndian = 1, kBigEndian = 2;

struct SetDef {
    const char* name;
    std::uint32_t flags, key_type, key_len, data_type, data_len;
    std::uint32_t key_byteorder;
    std::array<std::uint8_t, 4> fields{};  // interval concatenations: each field's length
};

// Interval maps over concatenations (nft's "pipapo"): an element holds a range.
constexpr std::uint32_t kIntervalMap = NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT;

// clang-format off
const SetDef kSets[] = {
    {"pub4", NFT_SET_MAP, concat(kTypeProto, kTypeService), 8,
     concat(kTypeIpv4, kTypeService), 8, kBigEndian, {}},
    {"pub4addr", NFT_SET_MAP, concat(concat(kTypeIpv4, kTypeProto), kTypeService), 12,
     concat(kTypeIpv4, kTypeService), 8, kBigEndian, {}},
    {"proxy4", kIntervalMap, concat(kTypeProto, kTypeService), 8,
     kTypeService, 2, kBigEndian, {1, 2}},
    {"proxy4addr", kIntervalMap, concat(concat(kTypeIpv4, kTypeProto), kTypeService), 12,
     kTypeService, 2, kBigEndian, {4, 1, 2}},
    {"proxy6", kIntervalMap, concat(kTypeProto, kTypeService), 8,
     kTypeService, 2, kBigEndian, {1, 2}},
    {"proxy6addr", kIntervalMap, concat(concat(kTypeIpv6, kTypeProto), kTypeService), 24,
     kTypeService, 2, kBigEndian, {16, 1, 2}},
    {"pub6", NFT_SET_MAP, concat(kTypeProto, kTypeService), 8,
     concat(kTypeIpv6, kTypeService), 20, kBigEndian, {}},
    {"pub6addr", NFT_SET_MAP, concat(concat(kTypeIpv6, kTypeProto), kTypeService), 24,
     concat(kTypeIpv6, kTypeService), 20, kBigEndian, {}},
    {kSetNets, NFT_SET_INTERVAL, kTypeIpv4, 4, 0, 0, kBigEndian, {}},
    {kSetNets6, NFT_SET_INTERVAL, kTypeIpv6, 16, 0, 0, kBigEndian, {}},
    {kSetBridges, 0, kTypeIfname, IFNAMSIZ, 0, 0, kHostEndian, {}},
    {kSetIsolated, NFT_SET_INTERVAL | NFT_SET_CONCAT, concat(kTypeIpv4, kTypeIfname), 4 + IFNAMSIZ,
     0, 0, kBigEndian, {4, IFNAMSIZ}},
    {kSetIsolated6, NFT_SET_INTERVAL | NFT_SET_CONCAT, concat(kTypeIpv6, kTypeIfname),
     16 + IFNAMSIZ, 0, 0, kBigEndian, {16, IFNAMSIZ}},
};
// clang-format on

// The priorities of iptables' nat and filter tables, nft's "dstnat",
// "srcnat" and "filter".
constexpr int kPriorityDstNat = -100, kPrioritySrcNat = 100, kPriorityFilter = 0;

struct ChainDef {
    const char* name;
    const char* type;  // base chains: "nat" or "filter"
    std::optional<std::uint32_t> hook;
    int priority;
};

const ChainDef kChains[] = {
    {"publish", nullptr, std::nullopt, 0},  // before the chains that jump to them
    {"loopback", nullptr, std::nullopt, 0},
    {"isolation", nullptr, std::nullopt, 0},
    {"prerouting", "nat", NF_INET_PRE_ROUTING, kPriorityDstNat},
    {"output", "nat", NF_INET_LOCAL_OUT, kPriorityDstNat},
    {"postrouting", "nat", NF_INET_POST_ROUTING, kPrioritySrcNat},
    {"forward", "filter", NF_INET_FORWARD, kPriorityFilter},
};

// One element as raw bytes: key, optional key end (intervals of
// concatenations), optional data, flags.
struct RawElement {
    std::vector<std::uint8_t> key;
    std::vector<std::uint8_t> data;
    std::uint32_t flags = 0;
    std::vector<std::uint8_t> key_end;
};

// The elements of `set` for network `n`; none for an IPv6 set when it has no IPv6.
std::vector<RawElement> network_elements(const Network& n, const char* set) {
    std::vector<std::uint8_t> bridge(IFNAMSIZ, 0);
    std::memcpy(bridge.data(), n.bridge.data(),
                std::min<std::size_t>(n.bridge.size(), IFNAMSIZ - 1));
    if (std::strcmp(set, kSetBridges) == 0) return {RawElement{bridge, {}, 0, {}}};
    const bool v6 = std::strcmp(set, kSetNets6) == 0 || std::strcmp(set, kSetIsolated6) == 0;
    if (v6 && !n.subnet6) return {};
    const Cidr& subnet = v6 ? *n.subnet6 : n.subnet;
    const auto first = subnet.network(), last = subnet.last();
    if (std::strcmp(set, kSetIsolated) == 0 || std::strcmp(set, kSetIsolated6) == 0) {
        // subnet . bridge: a range of the first field, as a pair of inclusive ends.
        RawElement e{{first.data(), first.data() + first.size()},
                     {},
                     0,
                     {last.data(), last.data() + last.size()}};
        e.key.insert(e.key.end(), bridge.begin(), bridge.end());
        e.key_end.insert(e.key_end.end(), bridge.begin(), bridge.end());
        return {e};
    }
    // An interval is its first address and, flagged as the end, the address
    // after its last (none when the subnet ends the address space).
    const auto after = last.plus(1);
    std::vector<RawElement> out{RawElement{{first.data(), first.data() + first.size()}, {}, 0, {}}};
    if (!after.is_unspecified())
        out.push_back(
            {{after.data(), after.data() + after.size()}, {}, NFT_SET_ELEM_INTERVAL_END, {}});
    return out;
}

RawElement raw(const NatElement& e) {
    RawElement r{e.key_bytes(), {e.data.begin(), e.data.begin() + e.data_len}, 0, {}};
    if (is_interval(e.map)) r.key_end.assign(e.key_end.begin(), e.key_end.begin() + e.key_len);
    return r;
}

// A batch of nftables messages, with a description of each for error messages.
class Batch {
  public:
    explicit Batch(std::uint32_t& seq) : seq_(seq), b_(nftnl_batch_alloc(kBatchPage, kBatchPage)) {
        if (!b_) throw Error("out of memory");
        nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
        nftnl_batch_update(b_);
    }
    ~Batch() { nftnl_batch_free(b_); }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    nlmsghdr* begin(std::uint16_t type, std::uint16_t flags, std::string what) {
        if (described_.empty()) first_seq_ = seq_;
        described_.push_back(std::move(what));
        return nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(b_)), type, NFPROTO_INET,
                                     flags | NLM_F_ACK, seq_++);
    }
    void end() { nftnl_batch_update(b_); }

    void elements(std::uint16_t type, std::uint16_t flags, const char* set,
                  const std::vector<RawElement>& elems, const std::string& verb) {
        for (std::size_t at = 0; at < elems.size(); at += kElementsPerMessage) {
            SetPtr s(must(nftnl_set_alloc()));
            nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
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
            auto* nlh = begin(type, flags,
                              verb + " " + std::to_string(stop - at) + " element(s) of set " + set);
            nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
            end();
        }
    }

    void finish() {
        nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(b_)), seq_++);
        nftnl_batch_update(b_);
    }

    std::size_t messages() const { return described_.size(); }
    const std::string& what(std::uint32_t seq) const {
        static const std::string unknown = "an nftables batch";
        if (seq < first_seq_ || seq - first_seq_ >= described_.size()) return unknown;
        return described_[seq - first_seq_];
    }
    nftnl_batch* get() const { return b_; }

  private:
    std::uint32_t& seq_;
    nftnl_batch* b_;
    std::uint32_t first_seq_ = 0;
    std::vector<std::string> described_;
};

struct BatchError {
    int err = 0;
    std::uint32_t seq = 0;
    std::string detail;  // the kernel's extended ack message, if any
};

// Reads the acknowledgements of `expected` messages; returns the first error.
std::optional<BatchError> read_acks(mnl_socket* nl, std::size_t expected) {
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
                        " messages of the nftables batch; its outcome is unknown: check "
                        "'portpub ls' and 'nft list table inet portpub', then retry");
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

std::string no_nftables_hint(int err) {
    if (err == EOPNOTSUPP || err == EPROTONOSUPPORT || err == EAFNOSUPPORT)
        return " (this kernel has no nftables support: load the nf_tables module or use a "
               "kernel built with CONFIG_NF_TABLES)";
    if (err == EPERM) return " (portpub needs CAP_NET_ADMIN: run it as root)";
    return "";
}

}  // namespace

NftFirewall::NftFirewall(std::string owner)
    : seq_(static_cast<std::uint32_t>(::time(nullptr))), owner_(std::move(owner)) {
    nl_ = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl_) {
        int err = errno;
        throw Error("cannot open a netfilter netlink socket: " + errno_text(err) +
                    no_nftables_hint(err));
    }
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
        int err = errno;
        mnl_socket_close(nl_);
        throw_errno("cannot bind the netfilter netlink socket", err);
    }
    int one = 1;
    int fd = mnl_socket_get_fd(nl_);
    // Errors carry no copy of the (possibly large) request, and a text when the kernel has one.
    ::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    int rcvbuf = 4 * 1024 * 1024;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
}

NftFirewall::~NftFirewall() {
    mnl_socket_close(nl_);
}

void NftFirewall::check_owner() {
    auto found = table_comment();
    if (!found || found->empty() || *found == comment()) return;
    const std::string prefix = "portpub records: ";
    const std::string other = found->rfind(prefix, 0) == 0 ? found->substr(prefix.size()) : *found;
    throw Error("table inet portpub serves the portpub records in " + other + ", not " + owner_ +
                "; a host has one state directory: pass --state-dir " + other);
}

void NftFirewall::apply(const FirewallChange& change) {
    check_owner();
    try {
        commit(change);
        return;
    } catch (const std::system_error& e) {
        if (e.code().value() == EEXIST && !change.add.empty())
            explain_existing(change.add, e.what());
        // Deleting something already gone fails the whole batch with ENOENT
        // (these kernel headers have no "destroy" verb): retry with only what
        // the kernel still holds.
        if (e.code().value() != ENOENT || !change.add.empty() || change.ensure_base)
            throw Error(e.what());
    }
    FirewallChange left;
    if (!table_exists()) return;  // nothing of ours is left
    left.drop_table = change.drop_table;
    const auto held = in_kernel(change.del);
    for (std::size_t i = 0; i < held.size(); ++i)
        if (held[i]) left.del.push_back(change.del[i]);
    for (const auto& n : change.del_networks)
        if (network_present(n)) left.del_networks.push_back(n);
    std::map<const char*, std::set<std::vector<std::uint8_t>>> isolated;
    for (const char* set : {kSetIsolated, kSetIsolated6})
        isolated[set] = element_keys(set);
    for (const auto& n : change.del_isolated) {
        bool held = true;  // every element of the network, or the delete fails again
        for (const auto& [set, keys] : isolated)
            for (const auto& e : network_elements(n, set))
                held = held && keys.contains(e.key);
        if (held) left.del_isolated.push_back(n);
    }
    try {
        commit(left);
    } catch (const std::system_error& e) {
        throw Error(e.what());
    }
}

std::vector<bool> NftFirewall::in_kernel(const std::vector<NatElement>& elements) {
    std::map<NatMap, std::set<std::vector<std::uint8_t>>> have;
    std::vector<bool> held;
    held.reserve(elements.size());
    for (const auto& e : elements) {
        if (!have.contains(e.map)) have[e.map] = element_keys(map_name(e.map));
        held.push_back(have[e.map].contains(e.key_bytes()));
    }
    return held;
}

void NftFirewall::explain_existing(const std::vector<NatElement>& added,
                                   const std::string& fallback) {
    const auto held = in_kernel(added);
    for (std::size_t i = 0; i < held.size(); ++i) {
        if (!held[i]) continue;
        const auto& e = added[i];
        throw Error("map element " + describe(e) +
                    " is already in table inet portpub, but no portpub record holds it (left by a "
                    "crash or added by hand); remove it with: nft delete element inet portpub " +
                    map_name(e.map) + " '{ " + nft_key(e) + " }'");
    }
    throw Error(fallback);
}

namespace {

// The table, its sets and chains, and the rules of every chain whose rule
// count differs from what it should be (new, flushed, or edited by hand).
void add_base(Batch& batch, const std::map<std::string, std::vector<Rule>>& chain_rules,
              const std::map<std::string, std::size_t>& present, const std::string& comment) {
    std::unique_ptr<nftnl_table, TableFree> t(must(nftnl_table_alloc()));
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTableName);
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    if (auto* ud = nftnl_udata_buf_alloc(512)) {  // shown by `nft list` as the table's comment
        nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, comment.c_str());
        nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
                             nftnl_udata_buf_len(ud));
        nftnl_udata_buf_free(ud);
    }
    nftnl_table_nlmsg_build_payload(
        batch.begin(NFT_MSG_NEWTABLE, NLM_F_CREATE, "creating table inet portpub"), t.get());
    batch.end();
    for (const auto& def : kSets) {
        SetPtr s(must(nftnl_set_alloc()));
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, def.name);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, def.flags);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, def.key_type);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, def.key_len);
        if (def.flags & NFT_SET_MAP) {
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, def.data_type);
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, def.data_len);
        }
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, static_cast<std::uint32_t>(&def - kSets) + 1);
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
    for (const auto& def : kChains) {
        std::unique_ptr<nftnl_chain, ChainFree> c(must(nftnl_chain_alloc()));
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, kTableName);
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, def.name);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        if (def.hook) {
            nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, def.type);
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, *def.hook);
            nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, def.priority);
            nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        nftnl_chain_nlmsg_build_payload(
            batch.begin(NFT_MSG_NEWCHAIN, NLM_F_CREATE, std::string("creating chain ") + def.name),
            c.get());
        batch.end();
    }
    for (const auto& [chain, rules] : chain_rules) {
        auto it = present.find(chain);
        const std::size_t have = it == present.end() ? 0 : it->second;
        if (have == rules.size()) continue;
        if (have > 0) {
            std::unique_ptr<nftnl_rule, RuleFree> flush(must(nftnl_rule_alloc()));
            nftnl_rule_set_str(flush.get(), NFTNL_RULE_TABLE, kTableName);
            nftnl_rule_set_str(flush.get(), NFTNL_RULE_CHAIN, chain.c_str());
            nftnl_rule_set_u32(flush.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
            nftnl_rule_nlmsg_build_payload(
                batch.begin(NFT_MSG_DELRULE, 0, "flushing chain " + chain), flush.get());
            batch.end();
        }
        for (const auto& rule : rules) {
            nftnl_rule_nlmsg_build_payload(batch.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                                                       "adding a rule to chain " + chain),
                                           rule.get());
            batch.end();
        }
    }
}

// Map and set elements to delete and add, or the whole table to delete.
void add_changes(Batch& batch, const FirewallChange& change) {
    if (change.drop_table) {
        std::unique_ptr<nftnl_table, TableFree> t(must(nftnl_table_alloc()));
        nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTableName);
        nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_table_nlmsg_build_payload(
            batch.begin(NFT_MSG_DELTABLE, 0, "deleting table inet portpub"), t.get());
        batch.end();
        return;
    }
    for (NatMap map : kNatMaps) {
        std::vector<RawElement> del, add;
        for (const auto& e : change.del)
            if (e.map == map) del.push_back(raw(e));
        for (const auto& e : change.add)
            if (e.map == map) add.push_back(raw(e));
        batch.elements(NFT_MSG_DELSETELEM, 0, map_name(map), del, "deleting");
        batch.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, map_name(map), add, "adding");
    }
    auto networks = [&](const char* set, const std::vector<Network>& gone,
                        const std::vector<Network>& added) {
        std::vector<RawElement> del, add;
        for (const auto& n : gone)
            for (auto& e : network_elements(n, set))
                del.push_back(std::move(e));
        for (const auto& n : added)
            for (auto& e : network_elements(n, set))
                add.push_back(std::move(e));
        batch.elements(NFT_MSG_DELSETELEM, 0, set, del, "deleting");
        batch.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, add, "adding");
    };
    networks(kSetNets, change.del_networks, change.add_networks);
    networks(kSetNets6, change.del_networks, change.add_networks);
    networks(kSetBridges, change.del_networks, change.add_networks);
    networks(kSetIsolated, change.del_isolated, change.add_isolated);
    networks(kSetIsolated6, change.del_isolated, change.add_isolated);
}

// Sends the whole batch in one sendmsg, so that the kernel takes it as one
// transaction, and throws std::system_error with the first failure.
void send(mnl_socket* nl, Batch& batch) {
    batch.finish();
    std::vector<iovec> iov(static_cast<std::size_t>(nftnl_batch_iovec_len(batch.get())));
    nftnl_batch_iovec(batch.get(), iov.data(), static_cast<std::uint32_t>(iov.size()));
    std::size_t total = 0;
    for (const auto& v : iov)
        total += v.iov_len;
    int fd = mnl_socket_get_fd(nl);
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
    if (auto error = read_acks(nl, batch.messages())) {
        std::string text =
            batch.what(error->seq) + " in table inet portpub failed: " + errno_text(error->err);
        if (!error->detail.empty()) text += " (" + error->detail + ")";
        text += no_nftables_hint(error->err);
        throw std::system_error(error->err, std::generic_category(), text);
    }
}

}  // namespace

void NftFirewall::commit(const FirewallChange& change) {
    Batch batch(seq_);
    if (change.ensure_base) {
        // When the table and every chain are as they should be, `up` only adds
        // elements. Re-sending table, sets and chains would make the kernel
        // record update transactions, which it frees after an RCU grace period
        // that closing this socket then waits for (about 10 ms here).
        auto present = rule_counts();
        bool intact = !present.empty();
        const auto chain_rules = base_rules();
        for (const auto& [chain, rules] : chain_rules) {
            auto it = present.find(chain);
            intact = intact && it != present.end() && it->second == rules.size();
        }
        if (!intact) add_base(batch, chain_rules, present, comment());
    }
    add_changes(batch, change);
    if (batch.messages() > 0) send(nl_, batch);
}

bool NftFirewall::query(const nlmsghdr* request, int (*on_message)(const nlmsghdr*, void*),
                        void* data, const std::string& what) {
    if (mnl_socket_sendto(nl_, request, request->nlmsg_len) < 0) throw_errno("cannot " + what);
    const auto portid = mnl_socket_get_portid(nl_);
    std::vector<char> buf(256 * 1024);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
        if (n < 0) throw_errno("cannot read the nftables reply");
        int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), request->nlmsg_seq, portid,
                            on_message, data);
        if (rc == MNL_CB_STOP) return true;
        if (rc < 0) {
            if (errno == ENOENT) return false;
            throw_errno("cannot " + what);
        }
    }
}

std::optional<std::string> NftFirewall::table_comment() {
    char buf[256];
    std::unique_ptr<nftnl_table, TableFree> t(must(nftnl_table_alloc()));
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTableName);
    // Not a dump: the ack after the table ends the reply.
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++seq_);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    std::string comment;
    auto read_comment = [](const nlmsghdr* msg, void* data) -> int {
        std::unique_ptr<nftnl_table, TableFree> table(must(nftnl_table_alloc()));
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
    if (!query(nlh, read_comment, &comment, "query table inet portpub")) return std::nullopt;
    return comment;
}

std::map<std::string, std::size_t> NftFirewall::rule_counts() {
    std::map<std::string, std::size_t> counts;
    char buf[256];
    std::unique_ptr<nftnl_rule, RuleFree> filter(must(nftnl_rule_alloc()));
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, kTableName);
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, ++seq_);
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    auto count = [](const nlmsghdr* msg, void* data) -> int {
        std::unique_ptr<nftnl_rule, RuleFree> r(must(nftnl_rule_alloc()));
        if (nftnl_rule_nlmsg_parse(msg, r.get()) < 0) return MNL_CB_ERROR;
        if (const char* chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN))
            ++(*static_cast<std::map<std::string, std::size_t>*>(data))[chain];
        return MNL_CB_OK;
    };
    if (!query(nlh, count, &counts, "list the rules of table inet portpub")) return {};
    return counts;
}

void NftFirewall::for_each_element(const std::string& set_name,
                                   const std::function<void(nftnl_set_elem*)>& visit) {
    char buf[512];
    SetPtr filter(must(nftnl_set_alloc()));
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, kTableName);
    nftnl_set_set_str(filter.get(), NFTNL_SET_NAME, set_name.c_str());
    auto* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, ++seq_);
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
    query(nlh, collect, const_cast<std::function<void(nftnl_set_elem*)>*>(&visit),
          "list set " + set_name + " of table inet portpub");
}

std::set<std::vector<std::uint8_t>> NftFirewall::element_keys(const std::string& set_name) {
    std::set<std::vector<std::uint8_t>> keys;
    for_each_element(set_name, [&](nftnl_set_elem* e) {
        std::uint32_t len = 0;
        if (auto* key =
                static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len)))
            keys.insert({key, key + len});
    });
    return keys;
}

std::vector<NatElement> NftFirewall::elements(NatMap map) {
    std::vector<NatElement> out;
    for_each_element(map_name(map), [&](nftnl_set_elem* e) {
        NatElement n;
        n.map = map;
        std::uint32_t len = 0;
        auto* key =
            static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
        if (!key || len > n.key.size()) return;
        std::copy(key, key + len, n.key.begin());
        n.key_len = static_cast<std::uint8_t>(len);
        if (auto* end = static_cast<const std::uint8_t*>(
                nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len));
            end && len <= n.key_end.size())
            std::copy(end, end + len, n.key_end.begin());
        if (auto* d =
                static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len));
            d && len <= n.data.size()) {
            std::copy(d, d + len, n.data.begin());
            n.data_len = static_cast<std::uint8_t>(len);
        }
        out.push_back(n);
    });
    return out;
}

bool NftFirewall::network_present(const Network& net, bool isolated) {
    for (const char* set : kNetworkSets) {
        const bool isolation = set == kSetIsolated || set == kSetIsolated6;
        if (isolation && !isolated) continue;
        const auto elements = network_elements(net, set);
        if (elements.empty()) continue;
        if (!element_keys(set).contains(elements[0].key)) return false;
    }
    return true;
}

std::vector<std::string> NftFirewall::base_differences() {
    std::vector<std::string> out;
    if (!table_exists()) return out;
    const auto present = rule_counts();
    for (const auto& [chain, rules] : base_rules()) {
        auto it = present.find(chain);
        const std::size_t have = it == present.end() ? 0 : it->second;
        if (have == rules.size()) continue;
        out.push_back("chain " + chain + " of table inet portpub has " + std::to_string(have) +
                      (have == 1 ? " rule" : " rules") + ", not " + std::to_string(rules.size()));
    }
    return out;
}

}  // namespace portpub
