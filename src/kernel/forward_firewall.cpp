// The table of `portpub forward` as libnftnl objects: its maps, sets, chains and rules, as
// forward_firewall.hpp draws them. apply() deletes and rebuilds the whole table in one batch,
// so that the kernel holds exactly what the forward file says.
#include "portpub/forward_firewall.hpp"

#include <netinet/in.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <time.h>

#include <optional>
#include <system_error>

#include "nft_netlink.hpp"
#include "portpub/error.hpp"

namespace portpub {

namespace {

using nft::Batch;
using nft::concat;
using nft::kBigEndian;
using nft::kTypeIpv4;
using nft::kTypeIpv6;
using nft::kTypeProto;
using nft::kTypeService;
using nft::Rule;

// Registers: NFT_REG_1 is 128 bits, its 32-bit parts NFT_REG32_00..03; each
// field of a concatenation takes one 32-bit part (an IPv6 address, four).
constexpr std::uint32_t kR1 = NFT_REG_1, kR32_0 = NFT_REG32_00, kR32_1 = NFT_REG32_01,
                        kR32_4 = NFT_REG32_04;

// The priority of iptables' nat PREROUTING/OUTPUT is -100 (dstnat); one
// before it, forwards are decided before the containers' table looks.
constexpr int kPriorityDstNat = -101, kPrioritySrcNat = 100;

// A map when it has data, a plain set when not; keys in network byte order.
nft::SetDef set_def(ForwardSet set, std::uint32_t key_type, std::uint32_t key_len,
                    std::uint32_t data_type = 0, std::uint32_t data_len = 0) {
    return {forward_set_name(set),
            data_len ? std::uint32_t{NFT_SET_MAP} : 0,
            key_type,
            key_len,
            data_type,
            data_len,
            kBigEndian,
            {}};
}
const nft::SetDef kSets[] = {
    set_def(ForwardSet::redirect, concat(kTypeProto, kTypeService), 8, kTypeService, 2),
    set_def(ForwardSet::dnat4, concat(kTypeProto, kTypeService), 8, concat(kTypeIpv4, kTypeService),
            8),
    set_def(ForwardSet::dnat6, concat(kTypeProto, kTypeService), 8, concat(kTypeIpv6, kTypeService),
            20),
    set_def(ForwardSet::targets4, concat(concat(kTypeIpv4, kTypeProto), kTypeService), 12),
    set_def(ForwardSet::targets6, concat(concat(kTypeIpv6, kTypeProto), kTypeService), 24),
};

const nft::ChainDef kChains[] = {
    {"forwards", nullptr, std::nullopt, 0},  // before the chains that jump to them
    {"loopback", nullptr, std::nullopt, 0},
    {"prerouting", "nat", NF_INET_PRE_ROUTING, kPriorityDstNat},
    {"output", "nat", NF_INET_LOCAL_OUT, kPriorityDstNat},
    {"postrouting", "nat", NF_INET_POST_ROUTING, kPrioritySrcNat},
};

std::vector<Rule> rules() {
    std::vector<Rule> out;
    auto add = [&](const char* chain) -> Rule& { return out.emplace_back(kForwardTable, chain); };
    auto redirect = [&](const char* chain) {
        add(chain)
            .proto_port(kR32_0)
            .lookup(kR1, forward_set_name(ForwardSet::redirect), kR1)
            .redirect(kR1);
    };
    add("forwards")
        .family(NFPROTO_IPV4)
        .proto_port(kR32_0)
        .lookup(kR1, forward_set_name(ForwardSet::dnat4), kR1)
        .dnat(NFPROTO_IPV4, kR1, kR32_1);
    add("forwards")
        .family(NFPROTO_IPV6)
        .proto_port(kR32_0)
        .lookup(kR1, forward_set_name(ForwardSet::dnat6), kR1)
        .dnat(NFPROTO_IPV6, kR1, kR32_4);
    redirect("forwards");
    // Loopback is never DNATed (that would need route_localnet, CVE-2020-8558):
    // from outside it is a martian, from this host only a local forward's
    // redirect (loopback to loopback) serves it; remote forwards' loopback
    // ports are the forward proxy's listeners.
    redirect("loopback");
    for (bool v4 : {true, false})
        add("prerouting").loopback_daddr(v4, kR1).verdict(NFT_RETURN);
    // No interface match: other hosts and this host reach every address alike.
    add("prerouting").fib_daddr_local(kR1).verdict(NFT_JUMP, "forwards");
    for (bool v4 : {true, false})
        add("output").loopback_daddr(v4, kR1).verdict(NFT_GOTO, "loopback");
    add("output").fib_daddr_local(kR1).verdict(NFT_JUMP, "forwards");
    add("postrouting")
        .family(NFPROTO_IPV4)
        .ct_status_dnat(kR1)
        .ip_daddr(kR1)
        .proto_port(kR32_1)
        .lookup(kR1, forward_set_name(ForwardSet::targets4))
        .masquerade();
    add("postrouting")
        .family(NFPROTO_IPV6)
        .ct_status_dnat(kR1)
        .ip6_daddr(kR1)
        .proto_port(kR32_4)
        .lookup(kR1, forward_set_name(ForwardSet::targets6))
        .masquerade();
    return out;
}

void add_contents(Batch& b, const std::vector<ForwardElement>& elements) {
    nft::add_sets(b, kSets);
    nft::add_chains(b, kChains);
    for (const auto& rule : rules())
        nft::append_rule(b, rule);
    for (ForwardSet set : kForwardSets) {
        std::vector<nft::RawElement> mine;
        for (const auto& e : elements)
            if (e.set == set) mine.push_back({e.key, e.data, 0, {}});
        b.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, forward_set_name(set), mine, "adding", "to");
    }
}

}  // namespace

ForwardFirewall::ForwardFirewall()
    : nl_(nft::open_socket()), seq_(static_cast<std::uint32_t>(::time(nullptr))) {}

ForwardFirewall::~ForwardFirewall() {
    nft::close_socket(nl_);
}

void ForwardFirewall::apply(const std::vector<ForwardElement>& elements) {
    Batch b(seq_, kForwardTable);
    // Adding the table first makes the delete succeed whether it existed or
    // not (a flushed ruleset, a first apply); the kernel runs the whole batch
    // as one transaction.
    nft::add_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE);
    nft::add_table(b, NFT_MSG_DELTABLE, 0);
    if (!elements.empty()) {
        nft::add_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE);
        add_contents(b, elements);
    }
    try {
        nft::send(nl_, b,
                  std::string("check 'nft list table inet ") + kForwardTable +
                      "', then run portpub forward apply again");
    } catch (const std::system_error& e) {
        throw Error(e.what());  // the callers handle Error: a failed apply is one
    }
}

bool ForwardFirewall::table_exists() {
    return nft::table_comment(nl_, seq_, kForwardTable).has_value();
}

std::set<std::vector<std::uint8_t>> ForwardFirewall::keys(ForwardSet set) {
    return nft::element_keys(nl_, seq_, kForwardTable, forward_set_name(set));
}

}  // namespace portpub
