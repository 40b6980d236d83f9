// The TCP relays of a proxy process: each accepted client gets a connection to its target and a
// TcpRelay that moves data between the two until both directions end or one side fails.
//
// start() opens a non-blocking connect to the target and registers both sockets with the
// proxy's epoll set, edge-triggered, each with a watch that knows its relay and its side.
// While the connect is pending, the client's events are only noted: its data waits in the
// kernel until the target answers. An error or hang-up on the target's side means the connect
// failed, and the client is reset, not closed, so that it sees a failure and not an empty
// reply. Once connected, every event marks its side readable or writable and pumps the
// relay. A relay that is done or reset leaves the set at once but is freed only at end_batch():
// later events of the same epoll batch may still point to it, and find it gone from the set.
// Pipes of finished relays go back to a shared pool.
#include "portpub/relay_set.hpp"

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
