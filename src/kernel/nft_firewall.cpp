// The table inet portpub of nft_firewall.hpp as libnftnl objects: its sets, chains and rules,
// the batch of an up or a down (the base re-sent only when a chain's rule count is off), and the
// queries that read it back.
#include "portpub/nft_firewall.hpp"

#include <net/if.h>
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

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "nft_netlink.hpp"
#include "portpub/error.hpp"

namespace portpub {

namespace {

using nft::Batch;
using nft::ChainDef;
using nft::concat;
using nft::kBigEndian;
using nft::kHostEndian;
using nft::kTypeIfname;
using nft::kTypeIpv4;
using nft::kTypeIpv6;
using nft::kTypeProto;
using nft::kTypeService;
using nft::RawElement;
using nft::Rule;
using nft::SetDef;

// Registers: concatenations start at the 128-bit register 1, whose 32-bit
// parts are 8, 9, 10, 11; each field of a concatenation takes one of them.
constexpr std::uint32_t kReg1 = NFT_REG_1, kReg2 = NFT_REG_2, kReg32_1 = NFT_REG32_01,
                        kReg32_2 = NFT_REG32_02, kReg32_4 = NFT_REG32_04, kReg32_5 = NFT_REG32_05;

const char* const kSetNets = "nets4";
const char* const kSetNets6 = "nets6";
const char* const kSetBridges = "bridges";
const char* const kSetIsolated = "isolated4";
const char* const kSetIsolated6 = "isolated6";
const char* const kNetworkSets[] = {kSetNets, kSetNets6, kSetBridges, kSetIsolated, kSetIsolated6};

// The rules of each chain, in order.
std::map<std::string, std::vector<Rule>> base_rules() {
    std::map<std::string, std::vector<Rule>> chains;
    auto add = [&](const char* chain) -> Rule& {
        return chains[chain].emplace_back(kTableName, chain);
    };

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
        for (bool v4 : {true, false}) {
            Rule& r = add(chain).loopback_daddr(v4, kReg1);
            from_outside ? r.verdict(NFT_RETURN) : r.verdict(NFT_GOTO, "loopback");
        }
    };
    // fib daddr type local jump publish: traffic to any address of this host.
    auto to_local_address = [&](Rule& r) { r.fib_daddr_local(kReg1).verdict(NFT_JUMP, "publish"); };
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

const ChainDef kChains[] = {
    {"publish", nullptr, std::nullopt, 0},  // before the chains that jump to them
    {"loopback", nullptr, std::nullopt, 0},
    {"isolation", nullptr, std::nullopt, 0},
    {"prerouting", "nat", NF_INET_PRE_ROUTING, kPriorityDstNat},
    {"output", "nat", NF_INET_LOCAL_OUT, kPriorityDstNat},
    {"postrouting", "nat", NF_INET_POST_ROUTING, kPrioritySrcNat},
    {"forward", "filter", NF_INET_FORWARD, kPriorityFilter},
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

}  // namespace

std::string base_rules_text() {
    std::string out;
    for (const auto& set : kSets) {
        char line[256];
        std::snprintf(
            line, sizeof line,
            "set %s flags 0x%x key 0x%x/%u data 0x%x/%u byteorder %u fields %u.%u.%u.%u\n",
            set.name, set.flags, set.key_type, set.key_len, set.data_type, set.data_len,
            set.key_byteorder, set.fields[0], set.fields[1], set.fields[2], set.fields[3]);
        out += line;
    }
    for (const auto& chain : kChains)
        out += "chain " + std::string(chain.name) +
               (chain.type
                    ? std::string(" type ") + chain.type + " hook " + std::to_string(*chain.hook) +
                          " priority " + std::to_string(chain.priority)
                    : std::string(" (regular)")) +
               "\n";
    for (const auto& [chain, rules] : base_rules()) {
        out += "chain " + chain + "\n";
        for (const auto& rule : rules) {
            char buf[4096];
            const int n = nftnl_rule_snprintf(buf, sizeof buf, rule.get(), NFTNL_OUTPUT_DEFAULT, 0);
            out += "  " + std::string(buf, static_cast<std::size_t>(std::max(n, 0))) + "\n";
        }
    }
    return out;
}

NftFirewall::NftFirewall(std::string owner)
    : nl_(nft::open_socket()),
      seq_(static_cast<std::uint32_t>(::time(nullptr))),
      owner_(std::move(owner)) {}

NftFirewall::~NftFirewall() {
    nft::close_socket(nl_);
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
        if (network_present(n, false)) left.del_networks.push_back(n);
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
    nft::add_table(batch, NFT_MSG_NEWTABLE, NLM_F_CREATE, comment);
    nft::add_sets(batch, kSets);
    nft::add_chains(batch, kChains);
    for (const auto& [chain, rules] : chain_rules) {
        auto it = present.find(chain);
        const std::size_t have = it == present.end() ? 0 : it->second;
        if (have == rules.size()) continue;
        if (have > 0) nft::flush_chain(batch, chain);
        for (const auto& rule : rules)
            nft::append_rule(batch, rule);
    }
}

// Map and set elements to delete and add, or the whole table to delete.
void add_changes(Batch& batch, const FirewallChange& change) {
    if (change.drop_table) {
        nft::add_table(batch, NFT_MSG_DELTABLE, 0);
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

// Throws std::system_error when a message fails, for apply() to tell what failed.
void send(mnl_socket* nl, Batch& batch) {
    nft::send(nl, batch, "check 'portpub ls' and 'nft list table inet portpub', then retry");
}

}  // namespace

void NftFirewall::commit(const FirewallChange& change) {
    Batch batch(seq_, kTableName);
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

std::optional<std::string> NftFirewall::table_comment() {
    return nft::table_comment(nl_, seq_, kTableName);
}

std::map<std::string, std::size_t> NftFirewall::rule_counts() {
    return nft::rule_counts(nl_, seq_, kTableName);
}

std::set<std::vector<std::uint8_t>> NftFirewall::element_keys(const std::string& set_name) {
    return nft::element_keys(nl_, seq_, kTableName, set_name);
}

std::vector<NatElement> NftFirewall::elements(NatMap map) {
    std::vector<NatElement> out;
    nft::for_each_element(nl_, seq_, kTableName, map_name(map), [&](nftnl_set_elem* e) {
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
