#include "portpub/ipam.hpp"

#include "portpub/error.hpp"

namespace portpub {

IpAddress default_gateway(const Cidr& subnet) {
    return IpAddress::v4(subnet.network().v4_value() + 1);
}

IpAddress allocate_address(const Cidr& subnet, const IpAddress& gateway,
                           const std::set<IpAddress>& used) {
    if (!subnet.address.is_v4()) throw Error("subnet " + subnet.str() + " is not an IPv4 subnet");
    const std::uint32_t first = subnet.network().v4_value() + 1;
    const std::uint32_t last = subnet.last().v4_value() - 1;  // below the broadcast address
    for (std::uint64_t v = first; v <= last; ++v) {
        auto a = IpAddress::v4(static_cast<std::uint32_t>(v));
        if (a != gateway && !used.contains(a)) return a;
    }
    throw Error("subnet " + subnet.str() + " has no free address left (" +
                std::to_string(used.size()) +
                " in use by containers); run 'portpub down' for one or pass a larger --subnet");
}

}  // namespace portpub
