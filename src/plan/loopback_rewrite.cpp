// The service map's entries of a publication: for each TCP or UDP mapping the
// proxy would serve on IPv4 loopback, one entry for its range of ports (for
// its one address when it is bound to 127.x, else for all of 127.0.0.0/8);
// for each it would serve on ::1, one more. IPv6 clients from other hosts are
// not loopback: they stay the proxy's (or kernel DNAT's). Ranges are cut and
// joined here, as intervals, so that check and gc compare what the map does
// port by port whatever blocks it holds them in.
#include "portpub/loopback_rewrite.hpp"

#include <algorithm>
#include <tuple>

#include "portpub/error.hpp"
#include "portpub/proxy_plan.hpp"

namespace portpub {

namespace {

// The mapping is published on ::1: no address, ::, or ::1 itself.
bool on_loopback6(const Mapping& m) {
    if (m.proto == Proto::sctp || !publishes_v6(m)) return false;
    return !m.host_ip || m.host_ip->is_unspecified() || m.host_ip->is_loopback();
}

bool same_key(const RewriteEntry& a, const RewriteEntry& b) {
    return std::tie(a.family, a.proto, a.address) == std::tie(b.family, b.proto, b.address);
}

// Where port 0 would go: the same for every port of a run (modulo 2^16).
std::uint16_t offset(const RewriteEntry& e) {
    return static_cast<std::uint16_t>(e.target_port - e.port);
}

bool same_target(const RewriteEntry& a, const RewriteEntry& b) {
    return a.target4 == b.target4 && a.target6 == b.target6 && offset(a) == offset(b);
}

// e's ports first..last, still sent where e sends them.
RewriteEntry piece(const RewriteEntry& e, std::uint32_t first, std::uint32_t last) {
    RewriteEntry p = e;
    p.port = static_cast<std::uint16_t>(first);
    p.last = static_cast<std::uint16_t>(last);
    p.target_port = static_cast<std::uint16_t>(e.target_port + (first - e.port));
    return p;
}

}  // namespace

std::vector<RewriteEntry> rewrite_entries(const Publication& p) {
    std::vector<RewriteEntry> out;
    for (const auto& m : p.mappings) {
        const bool v4 = proxy_serves_loopback4(m), v6 = on_loopback6(m);
        if (!v4 && !v6) continue;
        RewriteEntry e;
        e.proto = m.proto;
        e.port = m.host_port;
        e.last = m.host_last();
        e.target4 = p.address;
        e.target6 = p.address6;
        e.target_port = m.container_port;
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
    return join_runs(std::move(out));
}

std::vector<RewriteEntry> join_runs(std::vector<RewriteEntry> entries) {
    std::sort(entries.begin(), entries.end());
    std::vector<RewriteEntry> out;
    for (auto& e : entries) {
        if (!out.empty()) {
            auto& prev = out.back();
            if (same_key(prev, e) && same_target(prev, e) &&
                std::uint32_t{e.port} <= std::uint32_t{prev.last} + 1) {
                prev.last = std::max(prev.last, e.last);
                continue;
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<RewriteEntry> uncovered(const std::vector<RewriteEntry>& these,
                                    const std::vector<RewriteEntry>& by, bool same_target_only) {
    // `by` in key and port order, with the highest last port so far of each
    // key: each entry of `these` looks only at those that reach its ports.
    auto order = [](const RewriteEntry& a, const RewriteEntry& b) {
        return std::tie(a.family, a.proto, a.address, a.port) <
               std::tie(b.family, b.proto, b.address, b.port);
    };
    std::vector<RewriteEntry> sorted = by;
    std::sort(sorted.begin(), sorted.end(), order);
    std::vector<std::uint16_t> reach(sorted.size());
    for (std::size_t i = 0; i < sorted.size(); ++i)
        reach[i] = i > 0 && same_key(sorted[i - 1], sorted[i])
                       ? std::max(reach[i - 1], sorted[i].last)
                       : sorted[i].last;
    std::vector<RewriteEntry> out;
    for (const auto& t : these) {
        // What is left of t, as intervals in order, cut by each entry of `by`.
        std::vector<std::pair<std::uint32_t, std::uint32_t>> left{{t.port, t.last}};
        auto i = static_cast<std::size_t>(std::lower_bound(sorted.begin(), sorted.end(), t, order) -
                                          sorted.begin());
        while (i > 0 && same_key(sorted[i - 1], t) && reach[i - 1] >= t.port)
            --i;
        for (; i < sorted.size() && same_key(sorted[i], t) && sorted[i].port <= t.last &&
               !left.empty();
             ++i) {
            const auto& b = sorted[i];
            if (same_target_only && !same_target(t, b)) continue;
            std::vector<std::pair<std::uint32_t, std::uint32_t>> next;
            for (auto [first, last] : left) {
                if (b.last < first || b.port > last) {
                    next.emplace_back(first, last);
                    continue;
                }
                if (first < b.port) next.emplace_back(first, b.port - 1u);
                if (last > b.last) next.emplace_back(b.last + 1u, last);
            }
            left = std::move(next);
        }
        for (auto [first, last] : left)
            out.push_back(piece(t, first, last));
    }
    return join_runs(std::move(out));
}

std::vector<RewriteEntry> overlay(const std::vector<RewriteEntry>& held,
                                  const std::vector<RewriteEntry>& added) {
    auto out = uncovered(held, added, false);
    out.insert(out.end(), added.begin(), added.end());
    return join_runs(std::move(out));
}

std::vector<PortBlock> port_blocks(std::uint16_t first, std::uint16_t last) {
    std::vector<PortBlock> out;
    for (std::uint32_t at = first; at <= last;) {
        int bits = 0;
        // The largest block that starts at `at`, aligned, and ends by `last`.
        while (bits < 16 && (at & ((2u << bits) - 1)) == 0 && at + (2u << bits) - 1 <= last)
            ++bits;
        out.push_back({static_cast<std::uint16_t>(at), bits});
        at += 1u << bits;
    }
    return out;
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
    auto ports = [&](std::uint16_t first) {
        std::string text = std::to_string(first);
        if (e.last != e.port) {
            text += '-';
            text += std::to_string(static_cast<std::uint16_t>(first + (e.last - e.port)));
        }
        return text;
    };
    return std::string(proto_name(e.proto)) + " " + dialed + ":" + ports(e.port) + " -> " + to +
           ":" + ports(e.target_port);
}

}  // namespace portpub
