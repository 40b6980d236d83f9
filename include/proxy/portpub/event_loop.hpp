// The event loop of the two proxy processes (the container proxy and the
// forward proxy): epoll, the watches registered with it, and the signals
// that stop them.
#pragma once

#include <cstdint>
#include <functional>

#include "portpub/fd.hpp"

namespace portpub {

class Logger;

// Something registered with epoll: its events arrive in on().
struct EpollWatch {
    virtual ~EpollWatch() = default;
    virtual void on(std::uint32_t events) = 0;
};

// EPOLL_CTL_ADD of `fd` with `w` as its data; throws on failure.
void epoll_add(int epoll_fd, int fd, std::uint32_t events, EpollWatch* w);

// A watch that calls `fn` with its descriptor: a signalfd, timerfd or pidfd.
struct Callback : EpollWatch {
    std::function<void(int)> fn;
    UniqueFd fd;
    Callback(UniqueFd f, std::function<void(int)> cb) : fn(std::move(cb)), fd(std::move(f)) {}
    void on(std::uint32_t) override { fn(fd.get()); }
};

// Blocks SIGTERM, SIGINT and SIGHUP, and returns a non-blocking signalfd
// that reads them.
UniqueFd stop_signals();

// Reads every signal pending on a signalfd.
void drain_signals(int fd);

// While `running`, waits for events and hands each to its watch, then calls
// `after_batch`. Returns 0 once `running` is false, 1 when epoll_wait failed
// (which it logs).
int run_epoll(int epoll_fd, const bool& running, Logger& log,
              const std::function<void()>& after_batch);

}  // namespace portpub
