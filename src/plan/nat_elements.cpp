// The map elements of a publication as bytes: a DNAT element for each host port the kernel
// serves, and for the proxy one interval element a run of adjacent TCP ports; read back as the
// container they lead to, and written as a user or `nft` writes them.
#include "portpub/nat_elements.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

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
        case NatMap::wildcard6:
            return "pub6";
        case NatMap::bound6:
            return "pub6addr";
    }
    return "?";
}

bool is_interval(NatMap m) {
    return m != NatMap::wildcard4 && m != NatMap::bound4 && m != NatMap::wildcard6 &&
           m != NatMap::bound6;
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
std::uint8_t put_key(std::array<std::uint8_t, 24>& key, const IpAddress* address, Proto proto,
                     std::uint16_t port) {
    std::size_t at = 0;
    if (address) {
        std::memcpy(key.data(), address->data(), address->size());
        at = address->size();
    }
    key[at] = static_cast<std::uint8_t>(proto);
    put_port(&key[at + 4], port);
    return static_cast<std::uint8_t>(at + 8);
}

std::size_t address_width(NatMap m) {
    return m == NatMap::bound4 || m == NatMap::proxy4addr   ? 4
           : m == NatMap::proxy6addr || m == NatMap::bound6 ? 16
                                                            : 0;
}

// A run of host ports led to one proxy listener.
struct Run {
    NatMap map;
    std::optional<IpAddress> address;
    Proto proto;
    std::uint32_t first, last;
    std::uint16_t listener;
};

NatElement redirect(const Run& r) {
    NatElement e;
    e.map = r.map;
    const IpAddress* a = r.address ? &*r.address : nullptr;
    e.key_len = put_key(e.key, a, r.proto, static_cast<std::uint16_t>(r.first));
    put_key(e.key_end, a, r.proto, static_cast<std::uint16_t>(r.last));
    put_port(e.data.data(), r.listener);
    e.data_len = 2;
    return e;
}

}  // namespace

NatElement dnat_element(const Mapping& m, std::uint32_t offset, const IpAddress& container) {
    NatElement e;
    const auto host_port = static_cast<std::uint16_t>(m.host_port + offset);
    const bool bound = m.host_ip && !m.host_ip->is_unspecified();
    if (container.is_v4())
        e.map = bound ? NatMap::bound4 : NatMap::wildcard4;
    else
        e.map = bound ? NatMap::bound6 : NatMap::wildcard6;
    e.key_len = put_key(e.key, bound ? &*m.host_ip : nullptr, m.proto, host_port);
    std::memcpy(e.data.data(), container.data(), container.size());
    put_port(&e.data[container.size()], static_cast<std::uint16_t>(m.container_port + offset));
    e.data_len = static_cast<std::uint8_t>(container.size() + 4);
    return e;
}

std::optional<IpAddress> dnat_target(const NatElement& e) {
    switch (e.map) {
        case NatMap::wildcard4:
        case NatMap::bound4:
            return IpAddress::from_bytes(Family::v4, e.data.data());
        case NatMap::wildcard6:
        case NatMap::bound6:
            return IpAddress::from_bytes(Family::v6, e.data.data());
        default:
            return std::nullopt;
    }
}

std::vector<NatElement> nat_elements(const Publication& p) {
    std::vector<NatElement> out;
    out.reserve(port_count(p.mappings));
    std::vector<Run> runs;
    for (const auto& m : p.mappings) {
        for (std::uint32_t i = 0; i < m.count; ++i) {
            if (kernel_serves(m)) out.push_back(dnat_element(m, i, p.address));
            if (kernel_serves6(p, m)) out.push_back(dnat_element(m, i, *p.address6));
        }
        if (!p.proxy || m.proto != Proto::tcp) continue;  // UDP: sockets on the port
        const bool bound = m.host_ip && !m.host_ip->is_unspecified();
        if (proxy_serves_loopback4(m))
            runs.push_back({bound ? NatMap::proxy4addr : NatMap::proxy4,
                            bound ? m.host_ip : std::nullopt, m.proto, m.host_port, m.host_last(),
                            p.proxy->listen4});
        if (proxy_serves_v6(p, m) && p.proxy->listen6 != 0)  // 0: no IPv6 on the host
            runs.push_back({bound ? NatMap::proxy6addr : NatMap::proxy6,
                            bound ? m.host_ip : std::nullopt, m.proto, m.host_port, m.host_last(),
                            p.proxy->listen6});
    }
    // Ports next to each other reach the same listener: one element for all.
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
        return std::tie(a.map, a.address, a.proto, a.first) <
               std::tie(b.map, b.address, b.proto, b.first);
    });
    for (std::size_t i = 0; i < runs.size();) {
        Run merged = runs[i];
        std::size_t j = i + 1;
        for (; j < runs.size() && runs[j].map == merged.map && runs[j].address == merged.address &&
               runs[j].proto == merged.proto && runs[j].first <= merged.last + 1;
             ++j)
            merged.last = std::max(merged.last, runs[j].last);
        out.push_back(redirect(merged));
        i = j;
    }
    return out;
}

std::string nft_key(const NatElement& e) {
    const std::size_t at = address_width(e.map);
    std::string key;
    if (at == 4) key = IpAddress::from_bytes(Family::v4, e.key.data()).str() + " . ";
    if (at == 16) key = IpAddress::from_bytes(Family::v6, e.key.data()).str() + " . ";
    key += std::string(proto_name(static_cast<Proto>(e.key[at]))) + " . " +
           std::to_string(get_port(&e.key[at + 4]));
    if (is_interval(e.map) && get_port(&e.key_end[at + 4]) != get_port(&e.key[at + 4]))
        key += "-" + std::to_string(get_port(&e.key_end[at + 4]));
    return key;
}

std::string describe(const NatElement& e) {
    const std::size_t at = address_width(e.map);
    const bool v6 = e.map == NatMap::proxy6 || e.map == NatMap::proxy6addr ||
                    e.map == NatMap::wildcard6 || e.map == NatMap::bound6;
    std::string host = at == 4    ? IpAddress::from_bytes(Family::v4, e.key.data()).str()
                       : at == 16 ? IpAddress::from_bytes(Family::v6, e.key.data()).url_str()
                       : v6       ? "[::]"
                                  : "0.0.0.0";
    std::string proto(proto_name(static_cast<Proto>(e.key[at])));
    std::string ports = std::to_string(get_port(&e.key[at + 4]));
    if (is_interval(e.map) && get_port(&e.key_end[at + 4]) != get_port(&e.key[at + 4]))
        ports += "-" + std::to_string(get_port(&e.key_end[at + 4]));
    std::string from = proto + " " + host + ":" + ports;
    if (e.data_len == 2) return from + " -> proxy port " + std::to_string(get_port(e.data.data()));
    const bool to6 = e.data_len == 20;
    return from + " -> " +
           IpAddress::from_bytes(to6 ? Family::v6 : Family::v4, e.data.data()).url_str() + ":" +
           std::to_string(get_port(&e.data[to6 ? 16 : 4]));
}

}  // namespace portpub
