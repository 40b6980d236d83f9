// The TCP relays of a proxy process, on its epoll set: a non-blocking
// connect to the target for each accepted client, then TcpRelay pumping both
// ways until either side is done. The container proxy and the forward proxy
// differ only in how they find a client's target.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "portpub/event_loop.hpp"
#include "portpub/ip_address.hpp"
#include "portpub/tcp_relay.hpp"

namespace portpub {

class Logger;

class RelaySet {
  public:
    RelaySet(int epoll_fd, Logger& log) : epoll_(epoll_fd), log_(log) {}
    ~RelaySet();
    RelaySet(const RelaySet&) = delete;
    RelaySet& operator=(const RelaySet&) = delete;

    // Connects to to:port for `client` and relays between them. When the
    // connection cannot even be started, the client is reset and it says so.
    void start(UniqueFd client, const IpAddress& to, std::uint16_t port);

    // Frees the relays closed during the last batch of epoll events; call it
    // after each batch, when no event left points into them.
    void end_batch() { graveyard_.clear(); }

  private:
    struct Relay;
    struct End : EpollWatch {  // one of the two sockets of a relay
        Relay& relay;
        bool server;
        End(Relay& r, bool s) : relay(r), server(s) {}
        void on(std::uint32_t events) override;
    };
    struct Relay {
        RelaySet& set;
        std::unique_ptr<TcpRelay> pair;
        IpAddress to;
        std::uint16_t port;
        bool connecting = true;
        End client_end{*this, false}, server_end{*this, true};
        Relay(RelaySet& s, std::unique_ptr<TcpRelay> p, const IpAddress& t, std::uint16_t pt)
            : set(s), pair(std::move(p)), to(t), port(pt) {}
    };

    void event(Relay& r, bool server, std::uint32_t events);
    // Closing its sockets takes them out of epoll: each was registered once
    // and never duplicated.
    void close(Relay& r);

    int epoll_;
    Logger& log_;
    std::unordered_set<Relay*> relays_;
    std::vector<std::unique_ptr<Relay>> graveyard_;
    PipePool pipes_;
};

}  // namespace portpub
