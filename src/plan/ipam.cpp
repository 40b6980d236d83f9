// Addresses in a container subnet: the gateway is the first host address, a container gets the
// lowest free one after it, and a bridge without --subnet6 gets a unique local /64 from a hash
// of its name (FNV-1a, the same on every build and machine).
#include "portpub/ipam.hpp"

#include <array>

#include "portpub/error.hpp"

namespace portpub {

IpAddress default_gateway(const Cidr& subnet) {
    return subnet.network().plus(1);
}

IpAddress allocate_address(const Cidr& subnet, const IpAddress& gateway,
                           const std::set<IpAddress>& used) {
    const IpAddress first = subnet.network().plus(1);
    // IPv4 keeps its broadcast address; an IPv6 subnet is, in practice,
    // endless: the search stops after every used address and the gateway.
    const IpAddress last =
        subnet.address.is_v4() ? IpAddress::v4(subnet.last().v4_value() - 1) : subnet.last();
    const std::uint64_t tries = used.size() + 2;
    IpAddress a = first;
    for (std::uint64_t i = 0; i <= tries && a <= last && a >= first; ++i, a = a.plus(1))
        if (a != gateway && !used.contains(a)) return a;
    throw Error("subnet " + subnet.str() + " has no free address left (" +
                std::to_string(used.size()) + " in use by containers); run 'portpub down' for " +
                "one or pass a larger " + (subnet.address.is_v4() ? "--subnet" : "--subnet6"));
}

Cidr default_subnet6(const std::string& bridge) {
    // FNV-1a, 64 bits: stable across builds and machines, unlike std::hash.
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : "portpub:" + bridge) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    std::array<std::uint8_t, 16> b{};
    b[0] = 0xfd;
    for (int i = 1; i < 8; ++i)  // 40-bit global id, then the 16-bit subnet id
        b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(h >> (8 * (i - 1)));
    return Cidr{IpAddress::from_bytes(Family::v6, b.data()), 64};
}

}  // namespace portpub
