// One proxied TCP connection: splice(2) through a pooled pipe a direction, or read and write
// through a buffer where a socket does not splice or no pipe is left; an end of file passed on
// as a half-close, a failure of either side as a reset of both.
#include "portpub/tcp_relay.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

constexpr std::size_t kCopyBuffer = 64 * 1024;

std::size_t pipe_max_size() {
    const auto text = read_sysctl("fs/pipe-max-size");
    std::size_t size = 1 << 20;
    if (text) std::from_chars(text->data(), text->data() + text->size(), size);
    return size;
}

}  // namespace

void set_linger_reset(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

PipePool::PipePool(std::size_t keep, bool use_pipes) : keep_(keep), use_pipes_(use_pipes) {
    // Up to 1 MiB a pipe: fewer, larger moves. Pages are taken only as data
    // arrives, so an idle pipe costs next to nothing.
    capacity_ = std::min<std::size_t>(pipe_max_size(), 1 << 20);
}

Pipe PipePool::get() {
    if (!use_pipes_) return {};
    if (!free_.empty()) {
        Pipe p = std::move(free_.back());
        free_.pop_back();
        return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1]), 0};
    int got = ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity_));
    if (got > 0) capacity_ = std::min(capacity_, static_cast<std::size_t>(got));
    return p;
}

void PipePool::put(Pipe p) {
    if (p.read && p.bytes == 0 && free_.size() < keep_) free_.push_back(std::move(p));
}

TcpRelay::TcpRelay(UniqueFd client, UniqueFd server, PipePool& pool)
    : client_(std::move(client)), server_(std::move(server)), pool_(pool) {
    up_.from = down_.to = client_.get();
    up_.to = down_.from = server_.get();
    for (Direction* d : {&up_, &down_}) {
        d->pipe = pool_.get();
        d->copy = !d->pipe.read;  // no pipe to be had: copy through user space
    }
}

TcpRelay::~TcpRelay() {
    pool_.put(std::move(up_.pipe));
    pool_.put(std::move(down_.pipe));
}

void TcpRelay::ready(bool server, std::uint32_t events) {
    const int i = server ? 1 : 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_[i] = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_[i] = true;
}

TcpRelay::Step TcpRelay::step(Direction& d, const Direction& other) {
    if (d.copy) return step_copy(d);
    Step result = Step::idle;
    if (!d.eof && readable(d.from) && d.pipe.bytes < pool_.capacity()) {
        ssize_t n = ::splice(d.from, nullptr, d.pipe.write.get(), nullptr,
                             pool_.capacity() - d.pipe.bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d.pipe.bytes += static_cast<std::size_t>(n);
            result = Step::moved;
        } else if (n == 0) {
            d.eof = true;
            result = Step::moved;
        } else if (errno == EINVAL && d.pipe.bytes == 0) {
            d.copy = true;  // this socket does not splice: fall back to read/write
            return step_copy(d);
        } else if (errno == EAGAIN) {
            // With an empty pipe, EAGAIN means the socket is empty: wait for
            // epoll. With data in the pipe it may mean the pipe is full.
            if (d.pipe.bytes == 0) readable(d.from) = false;
        } else if (errno != EINTR) {
            return Step::failed;
        }
    }
    if (d.pipe.bytes > 0 && writable(d.to)) {
        ssize_t n = ::splice(d.pipe.read.get(), nullptr, d.to, nullptr, d.pipe.bytes,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d.pipe.bytes -= static_cast<std::size_t>(n);
            result = Step::moved;
        } else if (n < 0 && errno == EAGAIN) {
            writable(d.to) = false;
        } else if (n < 0 && errno != EINTR) {
            return Step::failed;
        }
    }
    if (d.eof && d.pipe.bytes == 0 && !d.shut) {
        // Half-close: the other side may still answer. When the other
        // direction has ended too, close() says it: no shutdown needed.
        if (!(other.eof && other.pipe.bytes == 0)) ::shutdown(d.to, SHUT_WR);
        d.shut = true;
        result = Step::moved;
    }
    return result;
}

TcpRelay::Step TcpRelay::step_copy(Direction& d) {
    if (!d.buffer) d.buffer = std::make_unique<char[]>(kCopyBuffer);
    Step result = Step::idle;
    if (!d.eof && d.buffered == 0) {
        ssize_t n = ::recv(d.from, d.buffer.get(), kCopyBuffer, 0);
        if (n > 0) {
            d.buffered = static_cast<std::size_t>(n);
            d.sent = 0;
            result = Step::moved;
        } else if (n == 0) {
            d.eof = true;
            result = Step::moved;
        } else if (errno != EAGAIN && errno != EINTR) {
            return Step::failed;
        }
    }
    if (d.sent < d.buffered) {
        ssize_t n = ::send(d.to, d.buffer.get() + d.sent, d.buffered - d.sent, MSG_NOSIGNAL);
        if (n > 0) {
            d.sent += static_cast<std::size_t>(n);
            if (d.sent == d.buffered) d.buffered = d.sent = 0;
            result = Step::moved;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return Step::failed;
        }
    }
    if (d.eof && d.buffered == 0 && !d.shut) {
        ::shutdown(d.to, SHUT_WR);
        d.shut = true;
        result = Step::moved;
    }
    return result;
}

void TcpRelay::reset_both() {
    set_linger_reset(client_.get());
    set_linger_reset(server_.get());
}

TcpRelay::State TcpRelay::pump() {
    // Edge-triggered: keep going until neither direction moves, so that no
    // readiness is left unused (a full pipe that drains lets reading resume).
    for (;;) {
        Step a = step(up_, down_), b = step(down_, up_);
        if (a == Step::failed || b == Step::failed) {
            reset_both();
            return State::reset;
        }
        if (up_.shut && down_.shut) return State::done;
        if (a == Step::idle && b == Step::idle) return State::open;
    }
}

}  // namespace portpub
