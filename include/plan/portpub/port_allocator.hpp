// Turns parsed -p specs into concrete mappings: explicit ports are checked for
// conflicts, host ranges and random ports get the first free port. Pure: what
// the host knows (port range, reserved ports, sockets in use) comes in as facts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "portpub/mapping.hpp"
#include "portpub/port_spec.hpp"

namespace portpub {

// A mapping that another container already holds.
struct PublishedPort {
    std::string owner;
    Mapping mapping;
};

// What the host knows; an empty function means "no" (nothing reserved, no
// socket in use) or, for is_local, "every address is local".
struct HostPortFacts {
    PortRange ephemeral{32768, 60999};            // net.ipv4.ip_local_port_range
    std::function<bool(std::uint16_t)> reserved;  // net.ipv4.ip_local_reserved_ports
    // True when a local socket holds this port on an address that meets the
    // mapping's: publishing it would hide that service from other hosts.
    std::function<bool(const std::optional<IpAddress>&, Proto, std::uint16_t)> in_use;
    // Who holds it, for the message: "nginx (pid 412) on 0.0.0.0:8080".
    std::function<std::string(const std::optional<IpAddress>&, Proto, std::uint16_t)> holder;
    // True when the address is one of this host's.
    std::function<bool(const IpAddress&)> is_local;
};

// Throws Error naming the spec and the conflict; returns the mappings in spec order.
std::vector<Mapping> allocate_ports(const std::vector<PortSpec>& specs,
                                    const std::vector<PublishedPort>& taken,
                                    const HostPortFacts& facts);

}  // namespace portpub
