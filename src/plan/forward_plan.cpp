// The forwards as kernel state: a redirect or dnat element a host port and a masquerade target
// a remote port, as bytes with every field padded to 32 bits; the forward proxy's routes and
// their command-line text; and which families need forwarding on.
#include "portpub/forward_plan.hpp"

#include <algorithm>
#include <charconv>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// A concatenation field takes a whole 32-bit register: protocol and port
// are padded to 4 bytes; ports in network byte order.
void put_port(std::vector<std::uint8_t>& out, std::uint16_t port) {
    out.insert(out.end(), {static_cast<std::uint8_t>(port >> 8),
                           static_cast<std::uint8_t>(port & 0xff), 0, 0});
}

std::vector<std::uint8_t> proto_port(Proto proto, std::uint16_t port) {
    std::vector<std::uint8_t> key{static_cast<std::uint8_t>(proto), 0, 0, 0};
    put_port(key, port);
    return key;
}

std::uint16_t get_port(const std::vector<std::uint8_t>& v, std::size_t at) {
    return static_cast<std::uint16_t>(v.at(at) << 8 | v.at(at + 1));
}

std::uint16_t target_port(const Forward& f, std::uint16_t port) {
    return static_cast<std::uint16_t>(f.target.first + (port - f.host.first));
}

}  // namespace

const char* forward_set_name(ForwardSet s) {
    switch (s) {
        case ForwardSet::redirect:
            return "redirect";
        case ForwardSet::dnat4:
            return "dnat4";
        case ForwardSet::dnat6:
            return "dnat6";
        case ForwardSet::targets4:
            return "targets4";
        case ForwardSet::targets6:
            return "targets6";
    }
    return "?";
}

ForwardElement port_element(const Forward& f, std::uint16_t port) {
    ForwardElement e;
    e.key = proto_port(f.proto, port);
    const auto to_port = target_port(f, port);
    if (!f.to) {
        e.set = ForwardSet::redirect;
        e.data = {static_cast<std::uint8_t>(to_port >> 8), static_cast<std::uint8_t>(to_port)};
        return e;
    }
    e.set = f.to->is_v4() ? ForwardSet::dnat4 : ForwardSet::dnat6;
    e.data.assign(f.to->data(), f.to->data() + f.to->size());
    put_port(e.data, to_port);
    return e;
}

std::vector<ForwardElement> forward_elements(const std::vector<Forward>& forwards) {
    std::vector<ForwardElement> out, targets;
    for (const auto& f : forwards)
        for (std::uint32_t p = f.host.first; p <= f.host.last; ++p) {
            const auto port = static_cast<std::uint16_t>(p);
            out.push_back(port_element(f, port));
            if (!f.to) continue;
            // After DNAT, postrouting sees the target: masquerade it, so that
            // its replies come back through this host.
            ForwardElement t;
            t.set = f.to->is_v4() ? ForwardSet::targets4 : ForwardSet::targets6;
            t.key.assign(f.to->data(), f.to->data() + f.to->size());
            const auto rest = proto_port(f.proto, target_port(f, port));
            t.key.insert(t.key.end(), rest.begin(), rest.end());
            targets.push_back(std::move(t));
        }
    auto less = [](const ForwardElement& a, const ForwardElement& b) {
        return std::tie(a.set, a.key) < std::tie(b.set, b.key);
    };
    std::sort(targets.begin(), targets.end(), less);
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    out.insert(out.end(), targets.begin(), targets.end());
    return out;
}

std::string element_text(const ForwardElement& e) {
    const std::size_t width = e.set == ForwardSet::targets4   ? 4
                              : e.set == ForwardSet::targets6 ? 16
                                                              : 0;
    std::string s = std::string(forward_set_name(e.set)) + " ";
    if (width)
        s +=
            IpAddress::from_bytes(width == 4 ? Family::v4 : Family::v6, e.key.data()).str() + " . ";
    s += std::string(proto_name(static_cast<Proto>(e.key.at(width)))) + " . " +
         std::to_string(get_port(e.key, width + 4));
    if (e.set == ForwardSet::redirect) s += " : " + std::to_string(get_port(e.data, 0));
    if (e.set == ForwardSet::dnat4 || e.set == ForwardSet::dnat6) {
        const bool v4 = e.set == ForwardSet::dnat4;
        const std::size_t at = v4 ? 4 : 16;
        s += " : " + IpAddress::from_bytes(v4 ? Family::v4 : Family::v6, e.data.data()).str() +
             " . " + std::to_string(get_port(e.data, at));
    }
    return s;
}

std::vector<ProxyRoute> proxy_routes(const std::vector<Forward>& forwards) {
    std::vector<ProxyRoute> out;
    for (const auto& f : forwards) {
        if (!f.to || f.proto != Proto::tcp) continue;
        for (std::uint32_t p = f.host.first; p <= f.host.last; ++p) {
            const auto port = static_cast<std::uint16_t>(p);
            out.push_back({port, *f.to, target_port(f, port)});
        }
    }
    std::sort(out.begin(), out.end(),
              [](const ProxyRoute& a, const ProxyRoute& b) { return a.port < b.port; });
    return out;
}

std::string route_text(const ProxyRoute& r) {
    return std::to_string(r.port) + "=" + r.to.url_str() + ":" + std::to_string(r.to_port);
}

ProxyRoute parse_route(std::string_view text) {
    auto bad = [&]() -> ProxyRoute {
        throw Error("invalid proxy route " + shown(text) + " (expected PORT=ADDRESS:PORT)");
    };
    const auto eq = text.find('='), colon = text.rfind(':');
    if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq) return bad();
    auto number = [&](std::string_view s) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535) bad();
        return static_cast<std::uint16_t>(v);
    };
    std::string_view addr = text.substr(eq + 1, colon - eq - 1);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']')
        addr = addr.substr(1, addr.size() - 2);
    auto a = IpAddress::parse(addr);
    if (!a) return bad();
    return {number(text.substr(0, eq)), *a, number(text.substr(colon + 1))};
}

bool needs_ipv4_forwarding(const std::vector<Forward>& forwards) {
    return std::any_of(forwards.begin(), forwards.end(),
                       [](const Forward& f) { return f.to && f.to->is_v4(); });
}

bool needs_ipv6_forwarding(const std::vector<Forward>& forwards) {
    return std::any_of(forwards.begin(), forwards.end(),
                       [](const Forward& f) { return f.to && !f.to->is_v4(); });
}

}  // namespace portpub
