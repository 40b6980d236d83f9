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
#include <memory>
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

// An interface as iptables shows it: "name", or "name+" for a prefix. The
// mask covers the bytes compared: the name and its NUL for an exact name, the
// prefix alone for "name+" (the name kept in the rule still ends with '+').
std::string interface_pattern(const char* name, const unsigned char* mask) {
    const std::size_t len = ::strnlen(name, IFNAMSIZ);
    std::size_t compared = 0;
    while (compared < IFNAMSIZ && mask[compared] == 0xff)
        ++compared;
    if (compared > len) return std::string(name, len);
    return std::string(name, compared) + "+";
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

// libiptc's calls for one family: the same for IPv4 and IPv6 but for their
// names and entry types.
template <class Entry>
struct Calls {
    const char* family;
    const char* names_file;
    xtc_handle* (*init)(const char*);
    const char* (*first_chain)(xtc_handle*);
    const char* (*next_chain)(xtc_handle*);
    const char* (*policy)(const char*, xt_counters*, xtc_handle*);
    const Entry* (*first_rule)(const char*, xtc_handle*);
    const Entry* (*next_rule)(const Entry*, xtc_handle*);
    const char* (*target)(const Entry*, xtc_handle*);
    void (*free)(xtc_handle*);
};

// `ip` is the entry's address part: ipt_ip or ip6t_ip6, alike in what is read.
template <class Entry, class IpOf>
std::vector<ForwardChain> read_family(const Calls<Entry>& api, IpOf ip_of) {
    if (!table_loaded(api.names_file)) return {};
    std::unique_ptr<xtc_handle, void (*)(xtc_handle*)> handle(api.init("filter"), api.free);
    if (!handle) return {};  // gone since, or not readable: nothing to report
    xtc_handle* h = handle.get();
    ForwardChain c;
    c.kind = ForwardChain::Kind::iptables_legacy;
    c.family = api.family;
    c.table = "filter";
    c.chain = "FORWARD";
    for (const char* chain = api.first_chain(h); chain; chain = api.next_chain(h))
        if (std::strcmp(chain, "FORWARD") != 0) c.table_chains.emplace_back(chain);
    xt_counters counters{};
    if (const char* policy = api.policy("FORWARD", &counters, h))
        c.policy_drop = std::strcmp(policy, "DROP") == 0;
    bool last_drops = false;
    for (const Entry* e = api.first_rule("FORWARD", h); e; e = api.next_rule(e, h)) {
        const auto& ip = ip_of(*e);
        const bool plain = e->target_offset == sizeof(Entry) && all_zero(ip.src) &&
                           all_zero(ip.dst) && all_zero(ip.smsk) && all_zero(ip.dmsk) &&
                           ip.proto == 0 && ip.flags == 0 && ip.invflags == 0;
        add_rule(
            c,
            {plain, ip.iniface, ip.iniface_mask, ip.outiface, ip.outiface_mask, api.target(e, h)},
            last_drops);
    }
    if (!last_drops) c.final_drop.clear();
    return {c};
}

}  // namespace

std::vector<ForwardChain> legacy_forward_chains() {
    const Calls<ipt_entry> v4{"ip",
                              "/proc/net/ip_tables_names",
                              iptc_init,
                              iptc_first_chain,
                              iptc_next_chain,
                              iptc_get_policy,
                              iptc_first_rule,
                              iptc_next_rule,
                              iptc_get_target,
                              iptc_free};
    const Calls<ip6t_entry> v6{"ip6",
                               "/proc/net/ip6_tables_names",
                               ip6tc_init,
                               ip6tc_first_chain,
                               ip6tc_next_chain,
                               ip6tc_get_policy,
                               ip6tc_first_rule,
                               ip6tc_next_rule,
                               ip6tc_get_target,
                               ip6tc_free};
    auto chains = read_family(v4, [](const ipt_entry& e) -> const ipt_ip& { return e.ip; });
    for (auto& c : read_family(v6, [](const ip6t_entry& e) -> const ip6t_ip6& { return e.ipv6; }))
        chains.push_back(std::move(c));
    return chains;
}

}  // namespace portpub
