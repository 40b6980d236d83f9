// Address allocation inside a container subnet. Pure: the caller passes the
// addresses in use, read from the records under the store's lock.
#pragma once

#include <set>

#include "portpub/ip_address.hpp"

namespace portpub {

// The conventional gateway: the first address after the network address.
IpAddress default_gateway(const Cidr& subnet);

// The lowest address of `subnet` that is not the network address, the gateway,
// the broadcast address or in `used`. Throws Error when none is left.
IpAddress allocate_address(const Cidr& subnet, const IpAddress& gateway,
                           const std::set<IpAddress>& used);

}  // namespace portpub
