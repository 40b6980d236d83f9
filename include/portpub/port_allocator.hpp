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

struct HostPortFacts {
    PortRange ephemeral{32768, 60999};            // net.ipv4.ip_local_port_range
    std::function<bool(std::uint16_t)> reserved;  // net.ipv4.ip_local_reserved_ports
    // True when a local socket holds this port, so the host cannot offer it.
    std::function<bool(const std::optional<IpAddress>&, Proto, std::uint16_t)> in_use;
};

// Throws Error naming the spec and the conflict; returns the mappings in spec order.
std::vector<Mapping> allocate_ports(const std::vector<PortSpec>& specs,
                                    const std::vector<PublishedPort>& taken,
                                    const HostPortFacts& facts);

}  // namespace portpub
