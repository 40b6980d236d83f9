// What portpub changed on the host itself, beyond any one container, and
// must undo with the last `down`: the bridges it made or changed, and the
// forwarding settings as it found them. A value: the store keeps it in
// host.json, the kernel layer reports what it changed in its terms.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace portpub {

struct HostState {
    struct Bridge {
        bool created = false;         // portpub created the bridge device
        bool address_added = false;   // portpub added the gateway address to it
        bool brought_up = false;      // portpub set it up
        bool address6_added = false;  // portpub added the IPv6 gateway address to it
        friend bool operator==(const Bridge&, const Bridge&) = default;
    };
    std::optional<std::string> ip_forward_before;   // set when portpub changed it
    std::optional<std::string> ip6_forward_before;  // net.ipv6.conf.all.forwarding, likewise
    std::map<std::string, Bridge> bridges;
    friend bool operator==(const HostState&, const HostState&) = default;
};

}  // namespace portpub
