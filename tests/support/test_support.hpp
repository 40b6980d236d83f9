// Shared fixtures for the unit tests beside the sources.
#pragma once

#include "portpub/naming.hpp"
#include "portpub/port_spec.hpp"
#include "portpub/publication.hpp"

namespace portpub::test {

inline Publication publication(const std::string& id, const std::string& address,
                               std::vector<std::string> specs,
                               const std::string& bridge = "portpub0",
                               const std::string& subnet = "10.77.0.0/16") {
    Publication p;
    p.id = id;
    p.netns = "/run/netns/" + id;
    p.netns_inode = std::hash<std::string>{}(id);
    p.network.bridge = bridge;
    p.network.subnet = *Cidr::parse(subnet);
    p.network.gateway = IpAddress::v4(p.network.subnet.network().v4_value() + 1);
    p.ifname = "eth0";
    p.address = *IpAddress::parse(address);
    p.host_veth = host_veth_name(p.address);
    for (const auto& s : specs) {
        auto spec = parse_port_spec(s);
        p.mappings.push_back({spec.host_ip, spec.proto, spec.host->first, spec.container.first,
                              spec.container.size()});
    }
    return p;
}

// `p` with IPv6 too: the subnet fd00:1::/64, its gateway ::1, the address ::2.
inline void add_ipv6(Publication& p) {
    p.network.subnet6 = *Cidr::parse("fd00:1::/64");
    p.network.gateway6 = *IpAddress::parse("fd00:1::1");
    p.address6 = *IpAddress::parse("fd00:1::2");
}

}  // namespace portpub::test
