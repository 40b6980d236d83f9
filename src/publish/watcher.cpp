// The watcher's loop: one poll on the nftables announcements, firewalld's on
// the system bus (a reload forgets the zone bindings) and the stop descriptor. A change by another
// process starts a short wait for the rest of its burst (a flush and a reload come as many
// transactions), then one restore puts back everything missing in one batch. Its own restore's
// announcements carry its own pid and are passed over, so it does not chase
// itself. It subscribes before its first repair: a change that came before
// the subscription is found by that repair.
#include "portpub/watcher.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "portpub/error.hpp"
#include "portpub/firewalld_signals.hpp"
#include "portpub/nft_events.hpp"
#include "portpub/publisher.hpp"

namespace portpub {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kQuiet = std::chrono::milliseconds(10);     // the burst has ended
constexpr auto kLongest = std::chrono::milliseconds(100);  // a burst that goes on

}  // namespace

Watcher::Watcher(std::filesystem::path state_dir, std::function<void(const std::string&)> log)
    : state_dir_(std::move(state_dir)), log_(std::move(log)) {}

void Watcher::repair() {
    try {
        Publisher publisher(state_dir_);
        const auto result = publisher.restore();
        for (const auto& line : result.done)
            log_(line);
        for (const auto& line : result.failed)
            log_("cannot restore " + line);
        for (const auto& note : publisher.notes())
            log_(note);
    } catch (const std::exception& e) {
        // The next change tries again; the watcher itself goes on.
        log_(std::string("repair failed: ") + e.what());
    }
}

void Watcher::run(int stop_fd) {
    NftEvents events;
    FirewalldSignals firewalld;
    repair();
    log_("watching nftables for " + state_dir_.string());
    bool pending = false;  // a burst of changes is being waited out
    Clock::time_point first{}, last{};
    auto due = [&] { return std::min(last + kQuiet, first + kLongest); };
    for (;;) {
        int timeout = -1;
        if (pending)
            timeout = static_cast<int>(std::max<long>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(due() - Clock::now())
                       .count()));
        pollfd fds[3] = {{events.fd(), POLLIN, 0},
                         {stop_fd, POLLIN, 0},
                         {firewalld.fd(), firewalld.events(), 0}};
        const int ready = ::poll(fds, firewalld.fd() < 0 ? 2 : 3, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            throw_errno("watch: cannot wait for changes");
        }
        if (fds[1].revents) return;
        const bool reloaded = firewalld.fd() >= 0 && fds[2].revents && firewalld.process();
        if ((fds[0].revents && events.drain()) || reloaded) {
            last = Clock::now();
            if (!pending) first = last;
            pending = true;
        }
        // A burst that goes on is repaired at its longest all the same.
        if (pending && Clock::now() >= due()) {
            pending = false;
            repair();
        }
    }
}

}  // namespace portpub
