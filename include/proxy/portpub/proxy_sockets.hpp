// The sockets of a container's proxy, made by `up` itself so that every error
// (a port in use, too few file descriptors) surfaces in `up`, then handed to
// the proxy process.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "portpub/fd.hpp"
#include "portpub/proxy_plan.hpp"

namespace portpub {

struct ProxyFds {
    UniqueFd listen4, listen6;  // as proxy_listeners() says; no IPv6 one on a host without IPv6
    std::uint16_t port4 = 0, port6 = 0;
    bool ipv6 = false;              // the host has IPv6
    std::vector<UniqueFd> sockets;  // holders and UDP servers, as proxy_sockets() lists them
};

// `a`:`port` as a socket address in `ss`; returns the address's length.
socklen_t socket_address(sockaddr_storage& ss, const IpAddress& a, std::uint16_t port);

// The port an IP socket is bound to; 0 when it is none.
std::uint16_t local_port(int fd);

// Raises the soft RLIMIT_NOFILE to the hard one; returns the new soft limit.
std::uint64_t raise_fd_limit();

// Throws Error naming the port and the program holding it, the file
// descriptor limit and --no-reserve, or IPv6 being off.
ProxyFds open_proxy_sockets(const Publication& p);

}  // namespace portpub
