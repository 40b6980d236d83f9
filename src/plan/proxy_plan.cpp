// Who serves each mapping, kernel DNAT or the proxy, and what the proxy needs: the ports its
// listeners take, the sockets it holds or serves, where a connection it receives goes, and the
// mappings as `docker port` would list them.
#include "portpub/proxy_plan.hpp"

namespace portpub {

namespace {

const IpAddress& any4() {
    static const IpAddress a = *IpAddress::parse("0.0.0.0");
    return a;
}
const IpAddress& any6() {
    static const IpAddress a = *IpAddress::parse("::");
    return a;
}
const IpAddress& loopback4() {
    static const IpAddress a = *IpAddress::parse("127.0.0.1");
    return a;
}
const IpAddress& loopback6() {
    static const IpAddress a = *IpAddress::parse("::1");
    return a;
}

}  // namespace

bool publishes_v4(const Mapping& m) {
    return !m.host_ip || m.host_ip->is_v4();
}
bool publishes_v6(const Mapping& m) {
    return !m.host_ip || !m.host_ip->is_v4();
}

bool kernel_serves(const Mapping& m) {
    return publishes_v4(m) && !(m.host_ip && m.host_ip->is_loopback());
}

bool proxy_serves_loopback4(const Mapping& m) {
    if (m.proto == Proto::sctp || !publishes_v4(m)) return false;
    return !m.host_ip || m.host_ip->is_unspecified() || m.host_ip->is_loopback();
}

bool kernel_serves6(const Publication& p, const Mapping& m) {
    return p.address6 && publishes_v6(m) && !(m.host_ip && m.host_ip->is_loopback());
}

bool proxy_serves_v6(const Publication& p, const Mapping& m) {
    if (m.proto == Proto::sctp || !publishes_v6(m)) return false;
    return !p.address6 || !m.host_ip || m.host_ip->is_unspecified() || m.host_ip->is_loopback();
}

bool needs_proxy(const Publication& p) {
    for (const auto& m : p.mappings)
        if (proxy_serves_loopback4(m) || proxy_serves_v6(p, m)) return true;
    return false;
}

std::vector<Mapping> listed_mappings(const Publication& p) {
    std::vector<Mapping> out;
    for (const auto& m : p.mappings) {
        if (m.host_ip) {
            out.push_back(m);
            continue;
        }
        Mapping v4 = m;
        v4.host_ip = any4();
        out.push_back(v4);
        if ((p.proxy && p.proxy->ipv6 && proxy_serves_v6(p, m)) || kernel_serves6(p, m)) {
            Mapping v6 = m;
            v6.host_ip = any6();
            out.push_back(v6);
        }
    }
    return out;
}

ProxyListeners proxy_listeners(const Publication& p) {
    // The first TCP port of each kind, by family.
    const Mapping *every4 = nullptr, *lo4 = nullptr, *every6 = nullptr, *lo6 = nullptr;
    bool tcp4 = false, tcp6 = false, other6 = false;
    for (const auto& m : p.mappings) {
        if (m.proto != Proto::tcp) continue;
        const bool every = !m.host_ip || m.host_ip->is_unspecified();
        if (proxy_serves_loopback4(m)) {
            tcp4 = true;
            if (every && !every4) every4 = &m;
            if (!every && *m.host_ip == loopback4() && !lo4) lo4 = &m;
        }
        if (proxy_serves_v6(p, m)) {
            tcp6 = true;
            if (every && !every6) every6 = &m;
            if (!every && *m.host_ip == loopback6() && !lo6) lo6 = &m;
            if (!every && *m.host_ip != loopback6()) other6 = true;
        }
    }
    ProxyListeners out;
    const bool own_ports = !(p.proxy && p.proxy->runtime_holds_ports);
    auto at = [own_ports](const IpAddress& a, const Mapping* m) {
        return ProxySocket{Proto::tcp, a, m && own_ports ? m->host_port : std::uint16_t{0}, true};
    };
    if (every4)
        out.v4 = at(any4(), every4);
    else if (lo4 || tcp4)
        out.v4 = at(loopback4(), lo4);
    if (every6)
        out.v6 = at(any6(), every6);
    else if (lo6 && !other6)
        out.v6 = at(loopback6(), lo6);
    else if (tcp6)
        out.v6 = at(any6(), nullptr);
    return out;
}

std::vector<ProxySocket> proxy_sockets(const Publication& p, bool reserve) {
    const auto listeners = proxy_listeners(p);
    auto listens = [&](Proto proto, const IpAddress& a, std::uint16_t port) {
        for (const auto& l : {listeners.v4, listeners.v6})
            if (l && proto == l->proto && port == l->port && a == l->address) return true;
        return false;
    };
    std::vector<ProxySocket> out;
    if (p.proxy && p.proxy->runtime_holds_ports) return out;
    for (const auto& m : p.mappings) {
        if (m.proto == Proto::sctp) continue;  // kernel DNAT only
        const bool udp = m.proto == Proto::udp;
        for (std::uint32_t i = 0; i < m.count; ++i) {
            const auto port = static_cast<std::uint16_t>(m.host_port + i);
            if (publishes_v4(m)) {
                const IpAddress bound = m.host_ip ? *m.host_ip : any4();
                const bool serves = udp && proxy_serves_loopback4(m);
                if (reserve && !listens(m.proto, bound, port))
                    out.push_back({m.proto, bound, port, serves});
                else if (serves)  // only where the proxy must read: loopback
                    out.push_back({m.proto, bound.is_loopback() ? bound : loopback4(), port, true});
            }
            if (publishes_v6(m)) {
                const IpAddress bound = m.host_ip ? *m.host_ip : any6();
                const bool serves = udp && proxy_serves_v6(p, m);
                if ((reserve || serves) && !listens(m.proto, bound, port))
                    out.push_back({m.proto, bound, port, serves});
            }
        }
    }
    return out;
}

std::optional<Endpoint> proxy_target(const Publication& p, Proto proto, const IpAddress& dst,
                                     std::uint16_t port) {
    const IpAddress d = unmapped(dst);
    for (const auto& m : p.mappings) {
        if (m.proto != proto || port < m.host_port || port > m.host_last()) continue;
        if (m.host_ip) {
            const IpAddress h = unmapped(*m.host_ip);
            const bool covers = h.is_unspecified() ? h.family() == d.family() : h == d;
            if (!covers) continue;
        }
        return Endpoint{p.address,
                        static_cast<std::uint16_t>(m.container_port + (port - m.host_port))};
    }
    return std::nullopt;
}

}  // namespace portpub
