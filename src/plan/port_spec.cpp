// One -p value in the `docker run` grammar: an optional host address (IPv6 in brackets), host
// and container ports or ranges, and a protocol; an error quotes the spec, cut when long, and
// says what is wrong.
#include "portpub/port_spec.hpp"

#include <algorithm>
#include <cctype>

#include "portpub/error.hpp"

namespace portpub {

std::string_view proto_name(Proto p) {
    switch (p) {
        case Proto::tcp:
            return "tcp";
        case Proto::udp:
            return "udp";
        case Proto::sctp:
            return "sctp";
    }
    return "?";
}

std::optional<Proto> parse_proto(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "tcp") return Proto::tcp;
    if (lower == "udp") return Proto::udp;
    if (lower == "sctp") return Proto::sctp;
    return std::nullopt;
}

namespace {

// Messages quote the spec; a 10,000-character spec is cut so the line stays readable.
std::string quoted(std::string_view spec) {
    constexpr std::size_t kMax = 80;
    if (spec.size() <= kMax) return "'" + std::string(spec) + "'";
    return "'" + std::string(spec.substr(0, kMax)) + "...' (" + std::to_string(spec.size()) +
           " characters)";
}

[[noreturn]] void fail(std::string_view spec, const std::string& why) {
    throw Error("invalid port spec " + quoted(spec) + ": " + why);
}

// A decimal port number; `allow_zero` only for a host port meaning "pick one".
std::uint16_t parse_port(std::string_view spec, std::string_view text, const char* what,
                         bool allow_zero) {
    if (text.empty()) fail(spec, std::string("empty ") + what);
    if (text.size() > 5 ||
        !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        std::string shown =
            text.size() > 20 ? std::string(text.substr(0, 20)) + "..." : std::string(text);
        fail(spec, std::string(what) + " '" + shown + "' is not a number between 1 and 65535");
    }
    unsigned value = 0;
    for (char c : text)
        value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) fail(spec, std::string(what) + " " + std::string(text) + " is above 65535");
    if (value == 0 && !allow_zero)
        fail(spec, std::string(what) + " 0 is not allowed (use 1-65535)");
    return static_cast<std::uint16_t>(value);
}

PortRange parse_range(std::string_view spec, std::string_view text, const char* what) {
    auto dash = text.find('-');
    if (dash == std::string_view::npos) {
        auto p = parse_port(spec, text, what, false);
        return {p, p};
    }
    auto first = parse_port(spec, text.substr(0, dash), what, false);
    auto last = parse_port(spec, text.substr(dash + 1), what, false);
    if (last < first)
        fail(spec, std::string(what) + " range " + std::string(text) +
                       " is reversed (write the lower port first)");
    return {first, last};
}

std::optional<IpAddress> parse_host_ip(std::string_view spec, std::string_view text,
                                       bool bracketed) {
    if (text.empty()) {
        if (bracketed) fail(spec, "empty host address between brackets");
        return std::nullopt;  // ":8080:80" means every address, as in Docker
    }
    auto ip = IpAddress::parse(text);
    if (!ip) {
        std::string shown =
            text.size() > 40 ? std::string(text.substr(0, 40)) + "..." : std::string(text);
        fail(spec, "host address '" + shown +
                       "' is not an IP address (host names are not resolved; write an address "
                       "such as 127.0.0.1 or [::1])");
    }
    return ip;  // Docker takes [192.0.2.1] and unbracketed IPv6 too
}

}  // namespace

PortSpec parse_port_spec(std::string_view text) {
    PortSpec spec;
    spec.text = std::string(text);
    if (text.empty()) fail(text, "empty spec (expected [ip:][hostPort:]containerPort[/proto])");
    for (unsigned char c : text)
        if (std::isspace(c) || !std::isprint(c))
            fail(text, "contains a space or control character");

    std::string_view rest = text;
    if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
        auto proto = rest.substr(slash + 1);
        auto p =
            proto.empty() ? std::optional<Proto>(Proto::tcp) : parse_proto(proto);  // "80/": tcp
        if (!p) {
            std::string shown =
                proto.size() > 20 ? std::string(proto.substr(0, 20)) + "..." : std::string(proto);
            fail(text, "unknown protocol '" + shown + "' (use tcp, udp or sctp)");
        }
        spec.proto = *p;
        rest = rest.substr(0, slash);
    }

    std::string_view ip_part, host_part, container_part;
    bool has_ip = false, has_host = false, bracketed = false;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) fail(text, "missing ']' after the IPv6 address");
        ip_part = rest.substr(1, close - 1);
        has_ip = bracketed = true;
        auto after = rest.substr(close + 1);
        if (after.empty() || after.front() != ':')
            fail(text, "expected ':' after the bracketed address, e.g. [::1]:8080:80");
        after.remove_prefix(1);
        auto colon = after.find(':');
        if (colon == std::string_view::npos)
            fail(text, "expected hostPort:containerPort after the address (hostPort may be empty)");
        host_part = after.substr(0, colon);
        container_part = after.substr(colon + 1);
        has_host = true;
    } else {
        auto colons = std::count(rest.begin(), rest.end(), ':');
        if (colons == 0) {
            container_part = rest;
        } else if (colons == 1) {
            auto colon = rest.find(':');
            host_part = rest.substr(0, colon);
            container_part = rest.substr(colon + 1);
            has_host = true;
            if (IpAddress::parse(host_part))
                fail(text, "'" + std::string(host_part) +
                               "' is an address, not a host port; for a "
                               "random host port on that address write " +
                               std::string(host_part) + "::" + std::string(container_part));
        } else {
            // As Docker splits it: the last two fields are the ports, everything
            // before them the address (an IPv6 address may come without brackets).
            auto c2 = rest.rfind(':');
            auto c1 = rest.rfind(':', c2 - 1);
            ip_part = rest.substr(0, c1);
            host_part = rest.substr(c1 + 1, c2 - c1 - 1);
            container_part = rest.substr(c2 + 1);
            has_ip = has_host = true;
        }
    }
    if (container_part.find(':') != std::string_view::npos)
        fail(text, "too many ':' after the host port");

    // In reading order: address, host port, container port.
    if (has_ip) spec.host_ip = parse_host_ip(text, ip_part, bracketed);
    // An empty host port or a lone 0 asks for a random one, as in Docker.
    if (has_host && !host_part.empty() && host_part != "0")
        spec.host = parse_range(text, host_part, "host port");
    if (container_part.empty()) fail(text, "empty container port");
    spec.container = parse_range(text, container_part, "container port");
    if (spec.host) {
        auto h = spec.host->size(), c = spec.container.size();
        if (h != c && c != 1)
            fail(text, "host ports " + std::string(host_part) + " (" + std::to_string(h) +
                           ") and container ports " + std::string(container_part) + " (" +
                           std::to_string(c) + ") differ in number; use ranges of the same length");
    }
    return spec;
}

}  // namespace portpub
