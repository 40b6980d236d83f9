// One proxied TCP connection: the client's socket and the socket to the
// container, with data moved by splice(2) through a pipe per direction, so
// that it never enters user space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "portpub/fd.hpp"

namespace portpub {

// close() of this socket then sends a reset instead of a FIN.
void set_linger_reset(int fd);

struct Pipe {
    UniqueFd read, write;
    std::size_t bytes = 0;  // held in the pipe right now
};

// Reused pipes: creating and sizing one costs three system calls.
class PipePool {
  public:
    // With `use_pipes` false the pool hands out no pipe, and relays copy
    // through user space, as they do when pipes run out.
    explicit PipePool(std::size_t keep = 256, bool use_pipes = true);
    Pipe get();
    void put(Pipe p);  // kept only when empty
    std::size_t capacity() const { return capacity_; }
    std::size_t idle() const { return free_.size(); }

  private:
    std::size_t keep_;
    bool use_pipes_;
    std::size_t capacity_;  // bytes a pipe holds (F_SETPIPE_SZ)
    std::vector<Pipe> free_;
};

class TcpRelay {
  public:
    enum class State { open, done, reset };

    // Both sockets non-blocking; `server` may still be connecting.
    TcpRelay(UniqueFd client, UniqueFd server, PipePool& pool);
    ~TcpRelay();
    TcpRelay(const TcpRelay&) = delete;
    TcpRelay& operator=(const TcpRelay&) = delete;

    // Moves what can move now, in both directions, until neither can; an end
    // of file is passed on as a shutdown of the other side's writing half.
    // Returns done when both directions have ended, reset when either side
    // failed (the other side is then reset too).
    State pump();

    // What epoll said about one side: worth reading from / writing to again.
    // Without such news, a side that answered EAGAIN is left alone.
    void ready(bool server, std::uint32_t epoll_events);

    int client() const { return client_.get(); }
    int server() const { return server_.get(); }

  private:
    struct Direction {
        int from = -1, to = -1;
        Pipe pipe;
        bool eof = false;   // `from` has sent all it will
        bool shut = false;  // and `to` was told
        bool copy = false;  // splice refused: read/write through `buffer`
        std::unique_ptr<char[]> buffer;
        std::size_t buffered = 0, sent = 0;
    };
    enum class Step { idle, moved, failed };
    Step step(Direction& d, const Direction& other);
    Step step_copy(Direction& d);
    void reset_both();

    bool& readable(int fd) { return fd == client_.get() ? readable_[0] : readable_[1]; }
    bool& writable(int fd) { return fd == client_.get() ? writable_[0] : writable_[1]; }

    UniqueFd client_, server_;
    PipePool& pool_;
    Direction up_, down_;  // client -> container, container -> client
    // [client, server]. Nothing is worth reading until epoll says so (adding a
    // socket to epoll reports data already waiting); sockets start writable.
    bool readable_[2] = {false, false}, writable_[2] = {true, true};
};

}  // namespace portpub
