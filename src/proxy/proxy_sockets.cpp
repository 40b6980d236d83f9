// The proxy's sockets as `up` makes them: the published ports held or served first, then the
// TCP listeners; a port in use names the program holding it, and the descriptor limit is
// checked first, with --no-reserve suggested where it would help.
#include "portpub/proxy_sockets.hpp"

#include <netinet/in.h>

#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "portpub/error.hpp"
#include "portpub/host_ports.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

// File descriptors kept free besides the held ports: for the connections the
// proxy relays (six each: two sockets, two pipes) and what `up` opens itself.
constexpr std::uint64_t kSpareFds = 1024;

UniqueFd make_socket(Proto proto, bool v6) {
    UniqueFd fd(::socket(
        v6 ? AF_INET6 : AF_INET,
        (proto == Proto::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno("cannot create a socket");
    int one = 1;
    if (v6)
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);  // IPv4 has its own
    return fd;
}

// "nginx (pid 412)" for a socket on this port, in any state but TIME_WAIT, or "".
std::string holder_of(Proto proto, std::uint16_t port) {
    for (const auto& s : dump_bound_sockets(true))
        if (s.proto == proto && s.port == port && !s.time_wait) {
            auto owner = socket_owner(s.inode);
            return (owner.empty() ? "a socket" : owner) + " on " + s.address.url_str() + ":" +
                   std::to_string(port);
        }
    return "";
}

// Whether the only TCP sockets on `port` are connections in TIME_WAIT.
bool only_time_wait(std::uint16_t port) {
    bool any = false;
    for (const auto& s : dump_bound_sockets(true)) {
        if (s.proto != Proto::tcp || s.port != port) continue;
        if (!s.time_wait) return false;
        any = true;
    }
    return any;
}

void bind_or_explain(int fd, const IpAddress& a, std::uint16_t port, Proto proto) {
    sockaddr_storage ss;
    socklen_t len = socket_address(ss, a, port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return;
    int err = errno;
    int reuse = 0;
    socklen_t reuse_len = sizeof reuse;
    ::getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &reuse_len);
    if (err == EADDRINUSE && proto == Proto::tcp && !reuse && only_time_wait(port)) {
        // Connections that a proxy listening here closed first stay in
        // TIME_WAIT for a minute, and only a socket with SO_REUSEADDR may bind
        // next to them. It is taken off again once bound, so that no server
        // can start on the port, with SO_REUSEADDR or without (checked in
        // tests/integration/proxy_test.cpp).
        int on = 1, off = 0;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
        err = errno;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
        if (bound) return;
    }
    const std::string what = "host port " + a.url_str() + ":" + std::to_string(port) + "/" +
                             std::string(proto_name(proto));
    if (err == EADDRINUSE) {
        auto who = holder_of(proto, port);
        throw Error(what + " is in use on this host" + (who.empty() ? "" : " by " + who) +
                    "; stop it or choose another host port");
    }
    throw_errno("cannot hold " + what, err);
}

UniqueFd listener(const ProxySocket& at) {
    auto fd = make_socket(Proto::tcp, !at.address.is_v4());
    int one = 1;
    // A port a proxy listened on before may have connections in TIME_WAIT.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (at.port == 0) {
        // A kernel-chosen port, from net.ipv4.ip_local_port_range: none is
        // left when this publication, or others and local programs, hold them all.
        sockaddr_storage ss;
        const socklen_t len = socket_address(ss, at.address, 0);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
            const int err = errno;
            if (err != EADDRINUSE) throw_errno("cannot bind the proxy's listener", err);
            auto range = read_sysctl("net/ipv4/ip_local_port_range").value_or("");
            std::replace(range.begin(), range.end(), '\t', '-');
            range.erase(std::remove(range.begin(), range.end(), '\n'), range.end());
            throw Error("the proxy needs a free TCP port on " + at.address.url_str() +
                        " for its listener, and every port of net.ipv4.ip_local_port_range (" +
                        range +
                        ") is published or in use; free some, widen the range, or publish a TCP "
                        "port on every address (the proxy then listens there)");
        }
    } else {
        bind_or_explain(fd.get(), at.address, at.port, Proto::tcp);
    }
    // Accepted sockets inherit it: the proxy adds no Nagle delay.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::listen(fd.get(), SOMAXCONN) != 0) throw_errno("cannot listen for the proxy");
    return fd;
}

}  // namespace

socklen_t socket_address(sockaddr_storage& ss, const IpAddress& a, std::uint16_t port) {
    std::memset(&ss, 0, sizeof ss);
    if (a.is_v4()) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        std::memcpy(&sa->sin_addr, a.data(), 4);
        return sizeof(sockaddr_in);
    }
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, a.data(), 16);
    return sizeof(sockaddr_in6);
}

std::uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

std::uint64_t raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

ProxyFds open_proxy_sockets(const Publication& p) {
    const bool reserve = p.proxy && p.proxy->reserve;
    const auto wanted = proxy_sockets(p, reserve);
    const std::uint64_t limit = raise_fd_limit();
    if (wanted.size() + kSpareFds > limit) {
        // UDP the proxy serves (loopback, IPv6 clients) takes a socket a port
        // even unheld: then --no-reserve is no way out.
        const std::size_t unheld = reserve ? proxy_sockets(p, false).size() : wanted.size();
        throw Error(
            std::string(reserve ? "holding" : "serving") + " the " + std::to_string(wanted.size()) +
            " sockets of these ports, with room for connections, needs more file descriptors "
            "than the limit of " +
            std::to_string(limit) + " (RLIMIT_NOFILE); " +
            (unheld + kSpareFds <= limit
                 ? "pass --no-reserve to publish without holding the ports, or raise the limit "
                   "(ulimit -n)"
                 : "raise the limit (ulimit -n), publish fewer UDP ports (the proxy serves each "
                   "one on loopback and for IPv6 clients with a socket), or pass --no-proxy "
                   "(loopback and IPv6 clients are then not served)"));
    }
    ProxyFds fds;
    // A host with IPv6 off has nothing to serve on [::]: that half is skipped.
    const bool ipv6 = UniqueFd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)).get() >= 0;
    // The published ports first: a listener on a kernel-chosen port (see
    // proxy_listeners()) must not take one of these.
    fds.sockets.reserve(wanted.size());
    for (const auto& s : wanted) {
        if (!s.address.is_v4() && !ipv6) {
            if (s.address.is_unspecified()) continue;
            throw Error("host address " + s.address.url_str() +
                        " needs IPv6, which is off on this host");
        }
        auto fd = make_socket(s.proto, !s.address.is_v4());
        if (s.serves) {
            // The proxy answers from the address the client sent to.
            int one = 1;
            if (s.address.is_v4())
                ::setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
            else
                ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        }
        bind_or_explain(fd.get(), s.address, s.port, s.proto);
        fds.sockets.push_back(std::move(fd));
    }
    const auto listeners = proxy_listeners(p);
    if (listeners.v4) {
        fds.listen4 = listener(*listeners.v4);
        fds.port4 = local_port(fds.listen4.get());
    }
    if (listeners.v6 && ipv6) {
        fds.listen6 = listener(*listeners.v6);
        fds.port6 = local_port(fds.listen6.get());
    }
    fds.ipv6 = ipv6;
    return fds;
}

}  // namespace portpub
