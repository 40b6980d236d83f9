// What portpub changed on the host itself, beyond any one container, and
// must undo with the last `down`: the bridges it made or changed, what it
// added for them to the firewalls beside it, and the forwarding settings as
// it found them. A value: the store keeps it in
// host.json, the kernel layer reports what it changed in its terms.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

namespace portpub {

struct HostState {
    struct Bridge {
        bool created = false;         // portpub created the bridge device
        bool address_added = false;   // portpub added the gateway address to it
        bool brought_up = false;      // portpub set it up
        bool address6_added = false;  // portpub added the IPv6 gateway address to it
        // portpub's accepts for its traffic in iptables-nft's filter FORWARD
        // (iptables), and in ip6tables' (with an IPv6 subnet).
        bool iptables_accepts = false;
        bool ip6tables_accepts = false;
        // The firewalld zone portpub bound it to at runtime; "" for none.
        std::string firewalld_zone;
        friend bool operator==(const Bridge&, const Bridge&) = default;
    };
    // iptables' `filter` table and its FORWARD chain, made by portpub to hold
    // its accepts where iptables had not made them yet (so that a drop policy
    // set later, as Docker or ufw set it, finds the accepts already there).
    // Deleted again with the last accepts, when they hold nothing else.
    struct FilterMade {
        bool table = false;
        bool chain = false;
        friend bool operator==(const FilterMade&, const FilterMade&) = default;
    };
    FilterMade iptables_made, ip6tables_made;
    std::optional<std::string> ip_forward_before;   // set when portpub changed it
    std::optional<std::string> ip6_forward_before;  // net.ipv6.conf.all.forwarding, likewise
    // Other programs' bridges with ports when portpub turned forwarding on:
    // they did without it. One that came since (Docker started later, and
    // found forwarding on) may need it, so the last down leaves it on.
    std::set<std::string> bridges_before_forwarding;
    std::map<std::string, Bridge> bridges;
    // The cgroup portpub attached its socket programs at (loopback
    // rewriting), written before it attaches them; detached with the last
    // publication that uses them.
    std::optional<std::string> rewrite_cgroup;
    friend bool operator==(const HostState&, const HostState&) = default;
};

}  // namespace portpub
