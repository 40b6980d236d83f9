// Mappings as runs of ports: when two conflict (same protocol, a shared host port, addresses
// that meet), adjacent runs joined, and the lines `docker port` and `docker ps` print for them.
#include "portpub/mapping.hpp"

namespace portpub {

std::string host_ip_text(const Mapping& m) {
    return m.host_ip ? m.host_ip->url_str() : "0.0.0.0";
}

namespace {

bool addresses_meet(const std::optional<IpAddress>& a, const std::optional<IpAddress>& b) {
    if (!a || !b) return true;  // "every address" meets any address
    if (a->family() != b->family()) return false;
    return a->is_unspecified() || b->is_unspecified() || *a == *b;
}

}  // namespace

bool conflicts(const Mapping& a, const Mapping& b) {
    return a.proto == b.proto && a.host_port <= b.host_last() && b.host_port <= a.host_last() &&
           addresses_meet(a.host_ip, b.host_ip);
}

std::vector<Mapping> merge_runs(const std::vector<Mapping>& in) {
    std::vector<Mapping> out;
    for (const auto& m : in) {
        if (!out.empty()) {
            auto& last = out.back();
            if (last.host_ip == m.host_ip && last.proto == m.proto &&
                std::uint32_t{last.host_port} + last.count == m.host_port &&
                std::uint32_t{last.container_port} + last.count == m.container_port) {
                last.count += m.count;
                continue;
            }
        }
        out.push_back(m);
    }
    return out;
}

std::string docker_port_lines(const std::vector<Mapping>& ms) {
    std::string out;
    for (const auto& m : ms) {
        const std::string ip = host_ip_text(m);
        const std::string proto(proto_name(m.proto));
        for (std::uint32_t i = 0; i < m.count; ++i) {
            out += std::to_string(m.container_port + i);
            out += '/';
            out += proto;
            out += " -> ";
            out += ip;
            out += ':';
            out += std::to_string(m.host_port + i);
            out += '\n';
        }
    }
    return out;
}

std::string docker_ps_ports(const std::vector<Mapping>& ms) {
    std::string out;
    for (const auto& m : merge_runs(ms)) {
        if (!out.empty()) out += ", ";
        out += host_ip_text(m) + ":" + std::to_string(m.host_port);
        if (m.count > 1) out += "-" + std::to_string(m.host_last());
        out += "->" + std::to_string(m.container_port);
        if (m.count > 1) out += "-" + std::to_string(m.container_last());
        out += "/" + std::string(proto_name(m.proto));
    }
    return out;
}

std::uint64_t port_count(const std::vector<Mapping>& ms) {
    std::uint64_t n = 0;
    for (const auto& m : ms)
        n += m.count;
    return n;
}

}  // namespace portpub
