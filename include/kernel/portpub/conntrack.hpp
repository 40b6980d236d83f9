// Conntrack entries of published UDP ports, deleted through ctnetlink in the
// calling thread's network namespace (libnetfilter_conntrack reads and
// writes the messages, libmnl carries them).
//
// Why: the kernel looks at NAT rules for the first packet of a flow only,
// and a UDP flow lives as long as datagrams keep coming. A client that keeps
// sending is therefore never re-routed by a rule change: an entry made before
// `up` keeps its datagrams on the host, one made while the rules led to a
// container that has left keeps sending them there. Deleting the entries
// once the rules have changed makes the next datagram a new flow.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "portpub/mapping.hpp"

namespace portpub {

// Deletes the UDP entries (IPv4 and IPv6) whose original destination is a
// host port of one of the UDP mappings of `published` (on the mapping's
// address when it has one), and returns how many it deleted. The table is
// read once a family and compared with the mappings' port ranges, so a
// 65,535-port range costs no more than one port. An entry that is already
// gone is not an error, nor is a kernel without conntrack (nothing to
// delete). Throws Error on any other failure.
std::size_t flush_udp_conntrack(const std::vector<Mapping>& published);

// The same for `up` and `down`, which must not fail over it: nullopt when it
// worked, else a note for the user that says what it means.
std::optional<std::string> try_flush_udp_conntrack(const std::vector<Mapping>& published);

}  // namespace portpub
