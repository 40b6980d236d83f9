// Who serves what, decided from a publication alone. Kernel DNAT serves host
// addresses other than loopback: IPv4 always, IPv6 when the container has an
// IPv6 address. The userland proxy serves what DNAT cannot: 127.0.0.0/8 and
// ::1 (DNAT there would need route_localnet), and IPv6 clients of an
// IPv4-only container.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "portpub/publication.hpp"

namespace portpub {

// Does the mapping publish on IPv4 / IPv6 host addresses? (No address: both.)
bool publishes_v4(const Mapping& m);
bool publishes_v6(const Mapping& m);
// Kernel DNAT serves it: IPv4, not a loopback address.
bool kernel_serves(const Mapping& m);
// Kernel DNAT serves its IPv6 side: the container has IPv6, not ::1.
bool kernel_serves6(const Publication& p, const Mapping& m);
// The proxy serves IPv4 loopback for it (no address, 0.0.0.0, or 127.x).
bool proxy_serves_loopback4(const Mapping& m);
// The proxy serves IPv6 for it: every IPv6 address when the container has
// IPv4 only, else ::1 (no address, ::, or ::1).
bool proxy_serves_v6(const Publication& p, const Mapping& m);

// Some TCP or UDP mapping needs the proxy (SCTP is kernel DNAT only).
bool needs_proxy(const Publication& p);

// A socket the proxy keeps open for a host port: it holds the port (TCP, or
// UDP the proxy does not read) or serves it (UDP the proxy reads).
struct ProxySocket {
    Proto proto = Proto::tcp;
    IpAddress address;  // 0.0.0.0 or :: for every address
    std::uint16_t port = 0;
    bool serves = false;
    friend bool operator==(const ProxySocket&, const ProxySocket&) = default;
};

// The TCP listeners nft redirects connections to: one for IPv4 loopback, one
// for IPv6 (none where no TCP mapping needs it). A listener takes a port the
// publication holds anyway, the first TCP port published on every address
// (0.0.0.0, [::]), else on 127.0.0.1 or ::1, so that the proxy takes no port
// of its own that another publication might want; failing that, port 0: the
// kernel picks one. IPv6 redirects from other hosts arrive on the receiving
// interface's address, so only an IPv6 listener for ::1 alone is on ::1.
struct ProxyListeners {
    std::optional<ProxySocket> v4, v6;
};
ProxyListeners proxy_listeners(const Publication& p);

// The sockets for `p` besides its listeners. With `reserve`, every published
// TCP and UDP port is held on its addresses, so that no other program can
// bind it while it is published (a listener holds its own port). Without,
// only the UDP sockets the proxy serves: 127.0.0.1 for IPv4 loopback, the
// mapping's address or :: for IPv6.
std::vector<ProxySocket> proxy_sockets(const Publication& p, bool reserve);

// Where a connection or datagram the proxy received for host address `dst`,
// port `port`, goes: the container's address and port; nullopt when no
// mapping of `p` covers it.
struct Endpoint {
    IpAddress address;
    std::uint16_t port = 0;
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
std::optional<Endpoint> proxy_target(const Publication& p, Proto proto, const IpAddress& dst,
                                     std::uint16_t port);

// The mappings as a user sees them published: one without an address is on
// 0.0.0.0 and, when a proxy serves IPv6, also on [::] (as `docker port` shows).
std::vector<Mapping> listed_mappings(const Publication& p);

}  // namespace portpub
