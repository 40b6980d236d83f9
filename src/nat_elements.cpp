#include "portpub/nat_elements.hpp"

#include <cstring>

namespace portpub {

const char* map_name(NatMap m) {
    return m == NatMap::wildcard4 ? "pub4" : "pub4addr";
}

namespace {

void put_port(std::uint8_t* at, std::uint16_t port) {  // network byte order, then padding
    at[0] = static_cast<std::uint8_t>(port >> 8);
    at[1] = static_cast<std::uint8_t>(port);
}

}  // namespace

NatElement nat_element(const Mapping& m, std::uint32_t offset, const IpAddress& container) {
    NatElement e;
    const auto host_port = static_cast<std::uint16_t>(m.host_port + offset);
    std::size_t at = 0;
    if (m.host_ip && !m.host_ip->is_unspecified()) {
        e.map = NatMap::bound4;
        std::memcpy(e.key.data(), m.host_ip->data(), 4);
        at = 4;
    }
    e.key[at] = static_cast<std::uint8_t>(m.proto);
    put_port(&e.key[at + 4], host_port);
    e.key_len = static_cast<std::uint8_t>(at + 8);
    std::memcpy(e.data.data(), container.data(), 4);
    put_port(&e.data[4], static_cast<std::uint16_t>(m.container_port + offset));
    return e;
}

std::vector<NatElement> nat_elements(const Publication& p) {
    std::vector<NatElement> out;
    out.reserve(port_count(p.mappings));
    for (const auto& m : p.mappings)
        for (std::uint32_t i = 0; i < m.count; ++i)
            out.push_back(nat_element(m, i, p.address));
    return out;
}

std::string describe(const NatElement& e) {
    std::size_t at = e.map == NatMap::bound4 ? 4 : 0;
    std::string host = at ? IpAddress::from_bytes(Family::v4, e.key.data()).str() : "0.0.0.0";
    auto port = [](const std::uint8_t* b) { return std::to_string((b[0] << 8) | b[1]); };
    std::string proto(proto_name(static_cast<Proto>(e.key[at])));
    return proto + " " + host + ":" + port(&e.key[at + 4]) + " -> " +
           IpAddress::from_bytes(Family::v4, e.data.data()).str() + ":" + port(&e.data[4]);
}

}  // namespace portpub
