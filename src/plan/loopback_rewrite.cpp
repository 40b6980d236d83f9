// The service map's entries of a publication: for each TCP or UDP mapping the
// proxy would serve on IPv4 loopback, one entry a host port (for its one
// address when it is bound to 127.x, else for all of 127.0.0.0/8); for each
// it would serve on ::1, one more. IPv6 clients from other hosts are not
// loopback: they stay the proxy's (or kernel DNAT's).
#include "portpub/loopback_rewrite.hpp"

#include <algorithm>

#include "portpub/error.hpp"
#include "portpub/proxy_plan.hpp"

namespace portpub {

namespace {

// The mapping is published on ::1: no address, ::, or ::1 itself.
bool on_loopback6(const Mapping& m) {
    if (m.proto == Proto::sctp || !publishes_v6(m)) return false;
    return !m.host_ip || m.host_ip->is_unspecified() || m.host_ip->is_loopback();
}

}  // namespace

std::vector<RewriteEntry> rewrite_entries(const Publication& p) {
    std::vector<RewriteEntry> out;
    for (const auto& m : p.mappings) {
        const bool v4 = proxy_serves_loopback4(m), v6 = on_loopback6(m);
        if (!v4 && !v6) continue;
        for (std::uint32_t i = 0; i < m.count; ++i) {
            RewriteEntry e;
            e.proto = m.proto;
            e.port = static_cast<std::uint16_t>(m.host_port + i);
            e.target4 = p.address;
            e.target6 = p.address6;
            e.target_port = static_cast<std::uint16_t>(m.container_port + i);
            if (v4) {
                e.family = Family::v4;
                if (m.host_ip && m.host_ip->is_loopback()) e.address = m.host_ip;
                out.push_back(e);
            }
            if (v6) {
                e.family = Family::v6;
                e.address.reset();
                out.push_back(e);
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool same_key(const RewriteEntry& a, const RewriteEntry& b) {
    return a.family == b.family && a.proto == b.proto && a.address == b.address && a.port == b.port;
}

std::string loopback_service(const Publication& p) {
    const bool on_loopback =
        std::any_of(p.mappings.begin(), p.mappings.end(),
                    [](const Mapping& m) { return proxy_serves_loopback4(m) || on_loopback6(m); });
    if (!on_loopback) return "none";
    if (p.rewrite) return "kernel";
    return p.proxy ? "proxy" : "none";
}

bool parse_loopback_mode(const std::string& text, const std::string& where) {
    if (text == "kernel") return true;
    if (text == "proxy") return false;
    throw Error(where + " '" + shown(text) +
                "' is not a loopback mode: use kernel (rewritten in the kernel, the proxy as "
                "fallback) or proxy (the proxy alone)");
}

std::string describe(const RewriteEntry& e) {
    std::string dialed = e.family == Family::v4
                             ? (e.address ? e.address->str() : std::string("127.0.0.0/8"))
                             : std::string("[::1]");
    std::string to = e.family == Family::v6 && e.target6 ? e.target6->url_str() : e.target4.str();
    return std::string(proto_name(e.proto)) + " " + dialed + ":" + std::to_string(e.port) + " -> " +
           to + ":" + std::to_string(e.target_port);
}

}  // namespace portpub
