// Address allocation inside a container subnet. Pure: the caller passes the
// addresses in use, read from the records under the store's lock.
#pragma once

#include <set>
#include <string>

#include "portpub/ip_address.hpp"

namespace portpub {

// The conventional gateway: the first address after the network address.
IpAddress default_gateway(const Cidr& subnet);

// The lowest address of `subnet` that is not the network address, the gateway,
// the IPv4 broadcast address or in `used`. Throws Error when none is left.
IpAddress allocate_address(const Cidr& subnet, const IpAddress& gateway,
                           const std::set<IpAddress>& used);

// The IPv6 subnet of a bridge when --ipv6 comes without --subnet6: a unique
// local /64 (RFC 4193, fd00::/8) whose 40-bit global id and subnet id are a
// hash of the bridge's name, so that one bridge always gets the same one and
// two bridges get different ones.
Cidr default_subnet6(const std::string& bridge);

}  // namespace portpub
