// The firewalls beside portpub as it reads them (iptables-nft's and other
// nftables tables' forward chains, iptables-legacy, firewalld), and what of
// them drops the forwarded traffic of a network: who, what, and the commands
// that would let it through. Values in, values out: the kernel layer fills a
// ForeignFirewalls, the publisher asks foreign_drops() and says the result.
//
// In nftables an accept ends a packet's walk through one base chain only:
// every other base chain on the forward hook, in any table, may still drop
// it. So a network's traffic passes only when each chain that sees it
// either drops nothing by default or accepts the bridge's traffic first.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "portpub/publication.hpp"

namespace portpub {

// A base chain on the forward hook, outside portpub's own tables, as far as
// its traffic by interface goes. iptables-legacy's FORWARD is one too.
struct ForwardChain {
    enum class Kind : std::uint8_t {
        nftables,         // a table of nft's (or of firewalld's nftables backend)
        iptables_nft,     // iptables' `filter FORWARD` in nftables (the iptables-nft backend)
        iptables_legacy,  // the kernel's x_tables, which portpub does not edit
    };
    Kind kind = Kind::nftables;
    std::string family;  // "ip", "ip6", "inet"
    std::string table, chain;
    bool policy_drop = false;
    // "drop" or "reject" when its last rule drops whatever reaches it.
    std::string final_drop;
    // Interfaces a rule accepts by name alone, in and out ("name+" for a
    // prefix, as iptables writes it).
    std::set<std::string> accepts_in, accepts_out;
    // The names of the other chains of its table: who made it shows there
    // (ufw-..., DOCKER...).
    std::vector<std::string> table_chains;
    friend bool operator==(const ForwardChain&, const ForwardChain&) = default;
};

struct FirewalldState {
    bool running = false;
    // StrictForwardPorts=yes (firewalld 2.3 and later): DNAT'd traffic is
    // rejected unless firewalld itself forwards the port.
    bool strict_forward_ports = false;
    std::map<std::string, std::string> zone_of;  // bridge -> its zone ("" for none)
    friend bool operator==(const FirewalldState&, const FirewalldState&) = default;
};

struct ForeignFirewalls {
    std::vector<ForwardChain> chains;
    FirewalldState firewalld;
    // The `iptables` command is iptables-nft (as Debian installs it): what
    // Docker, ufw or a person sets with it lands in nftables' `filter FORWARD`.
    bool iptables_nft_installed = false;
};

// Whether portpub's accepts for `bridge` belong in iptables-nft's FORWARD of
// that family (IPv6: ip6tables'): where the chain is, or where the iptables
// command would make it; and whether they are there now (anyone's accepts of
// the bridge by name, in both directions).
bool wants_iptables_accepts(const ForeignFirewalls& fw, bool ipv6);
// iptables-nft's FORWARD chain of that family; null when there is none.
const ForwardChain* iptables_forward(const ForeignFirewalls& fw, bool ipv6);
bool has_iptables_accepts(const ForeignFirewalls& fw, bool ipv6, const std::string& bridge);

// What portpub does to the firewalls beside it: `auto` lets a bridge's
// traffic through iptables-nft's FORWARD and binds it to a firewalld zone;
// `none` (--firewall none) leaves them alone.
enum class FirewallMode : std::uint8_t { automatic, none };
// "auto" or "none"; throws Error naming the value otherwise.
FirewallMode parse_firewall_mode(const std::string& text, const std::string& where);

// The zone portpub binds its bridges to, at runtime, when firewalld runs.
inline constexpr const char* kFirewalldZone = "trusted";

// The comment of portpub's accepts in iptables' FORWARD (`-m comment --comment`).
std::string iptables_comment(const std::string& bridge);

struct ForeignDrop {
    enum class Remedy : std::uint8_t {
        iptables_accepts,  // portpub adds accepts to iptables-nft's FORWARD
        firewalld_zone,    // portpub binds the bridge to a firewalld zone
        by_hand,           // another table, or iptables-legacy: the user runs `commands`
    };
    Remedy remedy = Remedy::by_hand;
    std::string
        firewall;      // "ufw", "Docker", "iptables", "iptables-legacy", "nftables", "firewalld"
    std::string what;  // "chain FORWARD of table ip filter (policy drop) drops ..."
    std::vector<std::string> commands;  // what lets the traffic through
    bool ipv6_only = false;             // only the network's IPv6 traffic
    friend bool operator==(const ForeignDrop&, const ForeignDrop&) = default;
};

// What drops the traffic forwarded to and from `net`'s bridge (IPv6 too when
// it has a subnet6), one entry a chain or firewall. firewalld's own table
// counts through firewalld when it runs (its zones decide), and by its chain
// when it does not.
std::vector<ForeignDrop> foreign_drops(const ForeignFirewalls& fw, const Network& net);

// The commands of `drops`, one a line, for an error or a note.
std::string commands_text(const std::vector<ForeignDrop>& drops);

}  // namespace portpub
