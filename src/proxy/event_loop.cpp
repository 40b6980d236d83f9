// The proxies' epoll loop: each event handed to its watch, a hook after every batch, and the
// stop signals blocked and read from a signalfd, so that they end the loop instead of the
// process.
#include "portpub/event_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "portpub/error.hpp"
#include "portpub/logger.hpp"

namespace portpub {

void epoll_add(int epoll_fd, int fd, std::uint32_t events, EpollWatch* w) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = w;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl");
}

UniqueFd stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd) throw_errno("signalfd");
    return fd;
}

void drain_signals(int fd) {
    signalfd_siginfo si{};
    while (::read(fd, &si, sizeof si) == sizeof si) {
    }
}

int run_epoll(int epoll_fd, const bool& running, Logger& log,
              const std::function<void()>& after_batch) {
    epoll_event events[256];
    while (running) {
        const int n = ::epoll_wait(epoll_fd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log.write("epoll_wait failed: " + errno_text(errno));
            return 1;
        }
        for (int i = 0; i < n && running; ++i)
            static_cast<EpollWatch*>(events[i].data.ptr)->on(events[i].events);
        after_batch();
    }
    return 0;
}

}  // namespace portpub
