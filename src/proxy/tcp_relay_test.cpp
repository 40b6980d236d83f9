// TcpRelay on socket pairs: bytes pass and half-closes travel both ways, with pipes and
// without; a side that fails ends the relay as a reset; the pipe pool reuses empty pipes only.
#include "portpub/tcp_relay.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

using namespace portpub;

namespace {

struct Pair {
    int ours = -1, relay = -1;  // our end, the relay's end
    Pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        ours = fds[0];
        relay = fds[1];
    }
};

// Pumps until the relay stops making progress; returns its state. splice(2)
// into a socket whose peer is gone raises SIGPIPE, as the proxy knows (it
// ignores the signal and gets EPIPE): so does this test.
TcpRelay::State settle(TcpRelay& r) {
    ::signal(SIGPIPE, SIG_IGN);
    r.ready(false, POLLIN | POLLOUT);
    r.ready(true, POLLIN | POLLOUT);
    return r.pump();
}

std::string drain(int fd) {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

TEST_CASE("a relay passes bytes and half-closes both ways, with pipes or without", "[relay]") {
    const bool pipes = GENERATE(true, false);
    INFO((pipes ? "splice" : "read/write"));
    PipePool pool(4, pipes);
    Pair client, server;
    auto owned = std::make_unique<TcpRelay>(UniqueFd(client.relay), UniqueFd(server.relay), pool);
    TcpRelay& relay = *owned;

    const std::string request(100000, 'q');
    std::size_t sent = 0;
    std::string at_server;
    // Write in rounds, letting the relay move what it can each time.
    while (sent < request.size()) {
        ssize_t n = ::write(client.ours, request.data() + sent, request.size() - sent);
        if (n > 0) sent += static_cast<std::size_t>(n);
        REQUIRE(settle(relay) == TcpRelay::State::open);
        at_server += drain(server.ours);
    }
    ::shutdown(client.ours, SHUT_WR);  // the client is done sending, still listening
    REQUIRE(settle(relay) == TcpRelay::State::open);
    at_server += drain(server.ours);
    CHECK(at_server == request);
    char c;
    CHECK(::read(server.ours, &c, 1) == 0);  // the server sees the end of file

    // The server answers after the client's end of file, then ends too.
    REQUIRE(::write(server.ours, "answer", 6) == 6);
    ::shutdown(server.ours, SHUT_WR);
    CHECK(settle(relay) == TcpRelay::State::done);
    CHECK(drain(client.ours) == "answer");
    owned.reset();  // a finished relay is closed, which ends the client's side too
    CHECK(::read(client.ours, &c, 1) == 0);
    ::close(client.ours);
    ::close(server.ours);
}

TEST_CASE("a side that fails ends the relay as a reset", "[relay]") {
    PipePool pool;
    Pair client, server;
    TcpRelay relay(UniqueFd(client.relay), UniqueFd(server.relay), pool);
    ::close(server.ours);  // the server is gone
    REQUIRE(::write(client.ours, "data", 4) == 4);
    CHECK(settle(relay) == TcpRelay::State::reset);
    ::close(client.ours);
}

TEST_CASE("the pipe pool reuses empty pipes only", "[relay]") {
    PipePool pool(1);
    Pipe a = pool.get();
    REQUIRE(a.read);
    CHECK(pool.capacity() >= 65536);
    pool.put(std::move(a));
    CHECK(pool.idle() == 1);
    Pipe b = pool.get();
    CHECK(pool.idle() == 0);
    b.bytes = 10;  // still holds data: not reused
    pool.put(std::move(b));
    CHECK(pool.idle() == 0);
    CHECK_FALSE(PipePool(1, false).get().read);
}
