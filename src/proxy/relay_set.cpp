#include "portpub/relay_set.hpp"

// glibc before the kernel headers, which step aside for it.
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sys/epoll.h>
#include <sys/socket.h>

#include "portpub/error.hpp"
#include "portpub/logger.hpp"
#include "portpub/proxy_sockets.hpp"

namespace portpub {

RelaySet::~RelaySet() {
    for (Relay* r : relays_)
        delete r;
}

void RelaySet::start(UniqueFd client, const IpAddress& to, std::uint16_t port) {
    UniqueFd server(
        ::socket(to.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    const socklen_t len = socket_address(ss, to, port);
    if (!server || (::connect(server.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 &&
                    errno != EINPROGRESS)) {
        log_.write("cannot connect to " + to.url_str() + ":" + std::to_string(port) + ": " +
                   errno_text(errno));
        set_linger_reset(client.get());
        return;
    }
    // A relay must not add Nagle's delay to what it passes on (the client's
    // socket has TCP_NODELAY from its listener already).
    int one = 1;
    ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto relay = std::make_unique<Relay>(
        *this, std::make_unique<TcpRelay>(std::move(client), std::move(server), pipes_), to, port);
    const std::uint32_t edge = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    epoll_add(epoll_, relay->pair->client(), edge, &relay->client_end);
    epoll_add(epoll_, relay->pair->server(), edge, &relay->server_end);
    relays_.insert(relay.release());
}

void RelaySet::End::on(std::uint32_t events) {
    relay.set.event(relay, server, events);
}

void RelaySet::event(Relay& r, bool server, std::uint32_t events) {
    if (!relays_.contains(&r)) return;  // closed earlier in this batch
    r.pair->ready(server, events);
    if (r.connecting) {
        if (!server) return;  // the client's data waits for the connection
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(r.pair->server(), SOL_SOCKET, SO_ERROR, &err, &len);
            log_.write("cannot connect to " + r.to.url_str() + ":" + std::to_string(r.port) + ": " +
                       errno_text(err ? err : ECONNREFUSED));
            set_linger_reset(r.pair->client());
            close(r);
            return;
        }
        if (!(events & EPOLLOUT)) return;
        r.connecting = false;
    }
    if (r.pair->pump() != TcpRelay::State::open) close(r);
}

void RelaySet::close(Relay& r) {
    if (relays_.erase(&r)) graveyard_.push_back(std::unique_ptr<Relay>(&r));
}

}  // namespace portpub
