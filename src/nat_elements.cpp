#include "portpub/nat_elements.hpp"

#include <cstring>

#include "portpub/proxy_plan.hpp"

namespace portpub {

const char* map_name(NatMap m) {
    switch (m) {
        case NatMap::wildcard4:
            return "pub4";
        case NatMap::bound4:
            return "pub4addr";
        case NatMap::proxy4:
            return "proxy4";
        case NatMap::proxy4addr:
            return "proxy4addr";
        case NatMap::proxy6:
            return "proxy6";
        case NatMap::proxy6addr:
            return "proxy6addr";
    }
    return "?";
}

namespace {

void put_port(std::uint8_t* at, std::uint16_t port) {  // network byte order
    at[0] = static_cast<std::uint8_t>(port >> 8);
    at[1] = static_cast<std::uint8_t>(port);
}

std::uint16_t get_port(const std::uint8_t* at) {
    return static_cast<std::uint16_t>((at[0] << 8) | at[1]);
}

// The key "[address .] proto . port", the address taking its full width.
void put_key(NatElement& e, const IpAddress* address, Proto proto, std::uint16_t port) {
    std::size_t at = 0;
    if (address) {
        std::memcpy(e.key.data(), address->data(), address->size());
        at = address->size();
    }
    e.key[at] = static_cast<std::uint8_t>(proto);
    put_port(&e.key[at + 4], port);
    e.key_len = static_cast<std::uint8_t>(at + 8);
}

std::size_t address_width(NatMap m) {
    return m == NatMap::bound4 || m == NatMap::proxy4addr ? 4 : m == NatMap::proxy6addr ? 16 : 0;
}

NatElement redirect(NatMap map, const IpAddress* address, Proto proto, std::uint16_t port,
                    std::uint16_t listener) {
    NatElement e;
    e.map = map;
    put_key(e, address, proto, port);
    put_port(e.data.data(), listener);
    e.data_len = 2;
    return e;
}

}  // namespace

NatElement dnat_element(const Mapping& m, std::uint32_t offset, const IpAddress& container) {
    NatElement e;
    const auto host_port = static_cast<std::uint16_t>(m.host_port + offset);
    const bool bound = m.host_ip && !m.host_ip->is_unspecified();
    e.map = bound ? NatMap::bound4 : NatMap::wildcard4;
    put_key(e, bound ? &*m.host_ip : nullptr, m.proto, host_port);
    std::memcpy(e.data.data(), container.data(), 4);
    put_port(&e.data[4], static_cast<std::uint16_t>(m.container_port + offset));
    e.data_len = 8;
    return e;
}

std::vector<NatElement> nat_elements(const Publication& p) {
    std::vector<NatElement> out;
    out.reserve(port_count(p.mappings));
    for (const auto& m : p.mappings) {
        const bool bound = m.host_ip && !m.host_ip->is_unspecified();
        const IpAddress* address = bound ? &*m.host_ip : nullptr;
        for (std::uint32_t i = 0; i < m.count; ++i) {
            const auto port = static_cast<std::uint16_t>(m.host_port + i);
            if (kernel_serves(m)) out.push_back(dnat_element(m, i, p.address));
            if (!p.proxy || m.proto != Proto::tcp) continue;
            if (proxy_serves_loopback4(m))
                out.push_back(redirect(bound ? NatMap::proxy4addr : NatMap::proxy4, address,
                                       m.proto, port, p.proxy->listen4));
            if (proxy_serves_v6(m) && p.proxy->listen6 != 0)  // 0: the host has no IPv6
                out.push_back(redirect(bound ? NatMap::proxy6addr : NatMap::proxy6, address,
                                       m.proto, port, p.proxy->listen6));
        }
    }
    return out;
}

std::string nft_key(const NatElement& e) {
    const std::size_t at = address_width(e.map);
    std::string key;
    if (at == 4) key = IpAddress::from_bytes(Family::v4, e.key.data()).str() + " . ";
    if (at == 16) key = IpAddress::from_bytes(Family::v6, e.key.data()).str() + " . ";
    return key + std::string(proto_name(static_cast<Proto>(e.key[at]))) + " . " +
           std::to_string(get_port(&e.key[at + 4]));
}

std::string describe(const NatElement& e) {
    const std::size_t at = address_width(e.map);
    const bool v6 = e.map == NatMap::proxy6 || e.map == NatMap::proxy6addr;
    std::string host = at == 4    ? IpAddress::from_bytes(Family::v4, e.key.data()).str()
                       : at == 16 ? IpAddress::from_bytes(Family::v6, e.key.data()).url_str()
                       : v6       ? "[::]"
                                  : "0.0.0.0";
    std::string proto(proto_name(static_cast<Proto>(e.key[at])));
    std::string from = proto + " " + host + ":" + std::to_string(get_port(&e.key[at + 4]));
    if (e.data_len == 2) return from + " -> proxy port " + std::to_string(get_port(e.data.data()));
    return from + " -> " + IpAddress::from_bytes(Family::v4, e.data.data()).str() + ":" +
           std::to_string(get_port(&e.data[4]));
}

}  // namespace portpub
