// What the host says about its ports and addresses: the local port range
// random host ports come from, the ports reserved from it, the sockets that
// hold ports (so that a published port never hides a local service), and the
// host's own addresses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portpub/port_allocator.hpp"

namespace portpub {

// Parses net.ipv4.ip_local_reserved_ports ("8080,9000-9010"); pure.
std::function<bool(std::uint16_t)> parse_reserved_ports(const std::string& text);

// A socket that holds a port: a TCP listener or a bound UDP socket.
struct BoundSocket {
    Proto proto = Proto::tcp;
    IpAddress address;  // 0.0.0.0 or :: for every address
    std::uint16_t port = 0;
    std::uint64_t inode = 0;
    bool time_wait = false;  // a closed TCP connection the kernel still remembers (no inode)
};

// One socket of a sock_diag dump (struct inet_diag_msg) as a BoundSocket; pure.
BoundSocket decode_diag_message(const void* inet_diag_msg, Proto proto);

// Every TCP listener and bound UDP socket of the current network namespace,
// through sock_diag: the kernel walks only the listening sockets, where
// /proc/net/tcp walks every bucket of the connection table (about 1 ms a file).
// A TCP connection's local port does not stop a port being published.
// With `any_tcp_state`, TCP sockets in every state (to name who holds a port).
std::vector<BoundSocket> dump_bound_sockets(bool any_tcp_state = false);

// The sockets bound on this host (its current network namespace).
class HostSockets {
  public:
    static std::shared_ptr<const HostSockets> read();
    explicit HostSockets(std::vector<BoundSocket> sockets);

    // The socket holding this port on an address that meets `ip`, if any.
    const BoundSocket* holder(const std::optional<IpAddress>& ip, Proto proto,
                              std::uint16_t port) const;

  private:
    std::vector<BoundSocket> sockets_;
    std::vector<bool> any_port_[2];  // [tcp, udp]: a quick "no socket at all on this port"
};

// "nginx (pid 412)" for the process that has the socket open, or "" when
// /proc does not show one.
std::string socket_owner(std::uint64_t inode);

// The addresses of this host's interfaces (current network namespace).
std::vector<IpAddress> host_addresses();
// The IPv4 broadcast addresses of the host's networks: each one's last
// address, and those the interfaces were given.
std::vector<IpAddress> host_broadcast_addresses();

// Reads the facts above from /proc of the current network namespace.
HostPortFacts read_host_port_facts();

}  // namespace portpub
