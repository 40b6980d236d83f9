// The proxies' event loop: each event goes to its watch, a batch at a time, until told to stop;
// SIGTERM, SIGINT and SIGHUP become readable on a signalfd.
#include "portpub/event_loop.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "portpub/logger.hpp"

using namespace portpub;

namespace {

struct Pipe {
    UniqueFd read, write;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        read = UniqueFd(fds[0]);
        write = UniqueFd(fds[1]);
    }
};

}  // namespace

TEST_CASE("run_epoll hands each event to its watch, a batch at a time, until stopped") {
    const auto dir = std::filesystem::temp_directory_path() / "portpub-event-loop-test";
    std::filesystem::create_directories(dir);
    Logger log(dir / "log");
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    REQUIRE(epoll);
    bool running = true;
    std::vector<std::string> seen;
    Pipe a, b;
    Callback on_a(std::move(a.read), [&](int fd) {
        char c;
        while (::read(fd, &c, 1) == 1)
            seen.push_back(std::string("a") + c);
    });
    Callback on_b(std::move(b.read), [&](int fd) {
        char c;
        while (::read(fd, &c, 1) == 1)
            seen.push_back(std::string("b") + c);
        running = false;  // the last one
    });
    epoll_add(epoll.get(), on_a.fd.get(), EPOLLIN, &on_a);
    epoll_add(epoll.get(), on_b.fd.get(), EPOLLIN, &on_b);
    REQUIRE(::write(a.write.get(), "1", 1) == 1);
    int batches = 0;
    // b only after a's batch: the loop must come back for it.
    CHECK(run_epoll(epoll.get(), running, log, [&] {
              if (++batches == 1) REQUIRE(::write(b.write.get(), "2", 1) == 1);
          }) == 0);
    CHECK(seen == std::vector<std::string>{"a1", "b2"});
    CHECK(batches == 2);
    std::filesystem::remove_all(dir);
}

TEST_CASE("stop_signals turns SIGTERM, SIGINT and SIGHUP into a readable signalfd") {
    sigset_t before;
    ::sigprocmask(SIG_SETMASK, nullptr, &before);
    {
        auto fd = stop_signals();
        REQUIRE(fd);
        ::raise(SIGHUP);  // blocked: pending, and so readable on the signalfd
        ::raise(SIGTERM);
        drain_signals(fd.get());
        signalfd_siginfo si{};
        CHECK(::read(fd.get(), &si, sizeof si) < 0);  // both were read
        sigset_t pending;
        ::sigpending(&pending);
        CHECK_FALSE(sigismember(&pending, SIGHUP));
        CHECK_FALSE(sigismember(&pending, SIGTERM));
    }
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
}
