// iptables-legacy's FORWARD chains through libiptc (libip4tc, libip6tc), read
// only. A table is read only when the kernel lists it in
// /proc/net/ip{,6}_tables_names: asking for one that is not loaded would load
// the legacy modules, which is a change. Of each rule, what matters is whether
// it accepts an interface's traffic by name alone, or drops everything at the
// end of the chain.
#include "iptables_legacy.hpp"

#include <net/if.h>
#include <netinet/in.h>

// libiptc's headers declare C functions without saying so.
extern "C" {
#include <libiptc/libip6tc.h>
#include <libiptc/libiptc.h>
}

#include <cstring>
#include <fstream>
#include <string>

namespace portpub {

namespace {

bool table_loaded(const char* names_file) {
    std::ifstream in(names_file);
    std::string name;
    while (std::getline(in, name))
        if (name == "filter") return true;
    return false;
}

// An interface as iptables shows it: "name", or "name+" for a prefix (its
// mask covers the name but not the NUL after it).
std::string interface_pattern(const char* name, const unsigned char* mask) {
    const std::size_t len = ::strnlen(name, IFNAMSIZ);
    if (len < IFNAMSIZ && mask[len] == 0) return std::string(name, len) + "+";
    return std::string(name, len);
}

template <class T>
bool all_zero(const T& v) {
    const auto* b = reinterpret_cast<const unsigned char*>(&v);
    for (std::size_t i = 0; i < sizeof v; ++i)
        if (b[i]) return false;
    return true;
}

// One rule of FORWARD as far as portpub cares.
struct RuleView {
    bool plain;  // no match extension, address, protocol or flag: interfaces at most
    const char* iniface;
    const unsigned char* iniface_mask;
    const char* outiface;
    const unsigned char* outiface_mask;
    std::string target;
};

void add_rule(ForwardChain& c, const RuleView& r, bool& last_drops) {
    if (r.plain && r.target == "ACCEPT") {
        if (r.iniface[0] && !r.outiface[0])
            c.accepts_in.insert(interface_pattern(r.iniface, r.iniface_mask));
        if (r.outiface[0] && !r.iniface[0])
            c.accepts_out.insert(interface_pattern(r.outiface, r.outiface_mask));
    }
    last_drops =
        r.plain && !r.iniface[0] && !r.outiface[0] && (r.target == "DROP" || r.target == "REJECT");
    if (last_drops) c.final_drop = r.target == "DROP" ? "drop" : "reject";
}

ForwardChain chain_of(const char* family) {
    ForwardChain c;
    c.kind = ForwardChain::Kind::iptables_legacy;
    c.family = family;
    c.table = "filter";
    c.chain = "FORWARD";
    return c;
}

std::vector<ForwardChain> read_ipv4() {
    if (!table_loaded("/proc/net/ip_tables_names")) return {};
    xtc_handle* h = iptc_init("filter");
    if (!h) return {};  // gone since, or not readable: nothing to report
    ForwardChain c = chain_of("ip");
    for (const char* chain = iptc_first_chain(h); chain; chain = iptc_next_chain(h))
        if (std::strcmp(chain, "FORWARD") != 0) c.table_chains.emplace_back(chain);
    ipt_counters counters{};
    if (const char* policy = iptc_get_policy("FORWARD", &counters, h))
        c.policy_drop = std::strcmp(policy, "DROP") == 0;
    bool last_drops = false;
    for (const ipt_entry* e = iptc_first_rule("FORWARD", h); e; e = iptc_next_rule(e, h)) {
        const ipt_ip& ip = e->ip;
        const bool plain = e->target_offset == sizeof(ipt_entry) && all_zero(ip.src) &&
                           all_zero(ip.dst) && all_zero(ip.smsk) && all_zero(ip.dmsk) &&
                           ip.proto == 0 && ip.flags == 0 && ip.invflags == 0;
        add_rule(c,
                 {plain, ip.iniface, ip.iniface_mask, ip.outiface, ip.outiface_mask,
                  iptc_get_target(e, h)},
                 last_drops);
    }
    if (!last_drops) c.final_drop.clear();
    iptc_free(h);
    return {c};
}

std::vector<ForwardChain> read_ipv6() {
    if (!table_loaded("/proc/net/ip6_tables_names")) return {};
    xtc_handle* h = ip6tc_init("filter");
    if (!h) return {};
    ForwardChain c = chain_of("ip6");
    for (const char* chain = ip6tc_first_chain(h); chain; chain = ip6tc_next_chain(h))
        if (std::strcmp(chain, "FORWARD") != 0) c.table_chains.emplace_back(chain);
    ip6t_counters counters{};
    if (const char* policy = ip6tc_get_policy("FORWARD", &counters, h))
        c.policy_drop = std::strcmp(policy, "DROP") == 0;
    bool last_drops = false;
    for (const ip6t_entry* e = ip6tc_first_rule("FORWARD", h); e; e = ip6tc_next_rule(e, h)) {
        const ip6t_ip6& ip = e->ipv6;
        const bool plain = e->target_offset == sizeof(ip6t_entry) && all_zero(ip.src) &&
                           all_zero(ip.dst) && all_zero(ip.smsk) && all_zero(ip.dmsk) &&
                           ip.proto == 0 && ip.flags == 0 && ip.invflags == 0;
        add_rule(c,
                 {plain, ip.iniface, ip.iniface_mask, ip.outiface, ip.outiface_mask,
                  ip6tc_get_target(e, h)},
                 last_drops);
    }
    if (!last_drops) c.final_drop.clear();
    ip6tc_free(h);
    return {c};
}

}  // namespace

std::vector<ForwardChain> legacy_forward_chains() {
    auto chains = read_ipv4();
    for (auto& c : read_ipv6())
        chains.push_back(std::move(c));
    return chains;
}

}  // namespace portpub
