// What the host says about its ports: the local port range random host ports
// come from, the ports reserved from it, and whether a socket holds a port.
#pragma once

#include <string>

#include "portpub/port_allocator.hpp"

namespace portpub {

// Parses net.ipv4.ip_local_reserved_ports ("8080,9000-9010"); pure.
std::function<bool(std::uint16_t)> parse_reserved_ports(const std::string& text);

// Reads the facts from /proc/sys of the current network namespace.
HostPortFacts read_host_port_facts();

// True when binding the port fails with EADDRINUSE (someone holds it).
bool port_in_use(const std::optional<IpAddress>& ip, Proto proto, std::uint16_t port);

}  // namespace portpub
