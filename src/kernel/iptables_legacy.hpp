// iptables-legacy's FORWARD chains (the kernel's x_tables, which iptables-nft
// does not see), read through libiptc: portpub never edits them, it names
// what they drop and the commands that let its traffic through.
#pragma once

#include <vector>

#include "portpub/foreign_drops.hpp"

namespace portpub {

// The FORWARD chains of the legacy `filter` tables of this namespace, IPv4
// and IPv6, when the kernel has them loaded (/proc/net/ip_tables_names).
std::vector<ForwardChain> legacy_forward_chains();

}  // namespace portpub
