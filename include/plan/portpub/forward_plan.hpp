// What the forwards mean for the kernel: the elements of the maps and sets of
// table inet portpub_forward, the loopback listeners of the forward proxy, and
// which forwarding sysctls they need. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "portpub/forward_config.hpp"

namespace portpub {

// The maps and sets of the table (see forward_firewall.hpp for their types).
enum class ForwardSet : std::uint8_t { redirect, dnat4, dnat6, targets4, targets6 };
inline constexpr ForwardSet kForwardSets[] = {ForwardSet::redirect, ForwardSet::dnat4,
                                              ForwardSet::dnat6, ForwardSet::targets4,
                                              ForwardSet::targets6};
const char* forward_set_name(ForwardSet s);

struct ForwardElement {
    ForwardSet set = ForwardSet::redirect;
    std::vector<std::uint8_t> key, data;  // as the kernel keeps them
    friend bool operator==(const ForwardElement&, const ForwardElement&) = default;
};

// One element per host port (and one per remote target, for masquerade),
// without duplicates.
std::vector<ForwardElement> forward_elements(const std::vector<Forward>& forwards);

// The element of host port `port` of `f` (its redirect or dnat map entry).
ForwardElement port_element(const Forward& f, std::uint16_t port);

// "redirect tcp . 80 : 5000", "dnat4 tcp . 8080 : 192.0.2.10 . 3000": for
// tests and messages.
std::string element_text(const ForwardElement& e);

// A loopback listener of the forward proxy: 127.0.0.1:port and [::1]:port
// to `to`:to_port. Kernel NAT cannot send loopback traffic off the host
// without route_localnet, which portpub never sets.
struct ProxyRoute {
    std::uint16_t port = 0;
    IpAddress to;
    std::uint16_t to_port = 0;
    friend bool operator==(const ProxyRoute&, const ProxyRoute&) = default;
};
// Every TCP port of every remote forward, by host port.
std::vector<ProxyRoute> proxy_routes(const std::vector<Forward>& forwards);

// "8080=192.0.2.10:3000" and back (the proxy's command line); parse throws Error.
std::string route_text(const ProxyRoute& r);
ProxyRoute parse_route(std::string_view text);

// Whether forwarding must be on: remote forwards to IPv4 / IPv6 targets.
bool needs_ipv4_forwarding(const std::vector<Forward>& forwards);
bool needs_ipv6_forwarding(const std::vector<Forward>& forwards);

}  // namespace portpub
