// Which conntrack entries belong to published ports, decided from values
// alone; conntrack.hpp dumps the kernel's table and deletes what this picks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "portpub/ip_address.hpp"
#include "portpub/mapping.hpp"

namespace portpub {

// The original direction of a conntrack entry: where its first packet came
// from and where the client sent it, before any NAT.
struct FlowTuple {
    Proto proto = Proto::udp;
    IpAddress src, dst;
    std::uint16_t src_port = 0, dst_port = 0;
    friend bool operator==(const FlowTuple&, const FlowTuple&) = default;
};

// True when the client sent the flow to a host port of one of `mappings`
// (same protocol) on an address of this host (`is_local`; loopback counts):
// any of them for a mapping without an address, any of the family for
// 0.0.0.0 or ::, else that address only. A flow to another machine's port of
// the same number (the host's own DNS queries to 5353, say) is not one.
bool sent_to_published(const FlowTuple& flow, const std::vector<Mapping>& mappings,
                       const std::function<bool(const IpAddress&)>& is_local);

// "udp 192.0.2.2:40000 -> 192.0.2.1:5353", "udp [2001:db8::2]:40000 -> [2001:db8::1]:5353".
std::string describe(const FlowTuple& flow);

}  // namespace portpub
