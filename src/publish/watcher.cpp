// The watcher's loop: one poll on the nftables announcements, the link and
// address announcements, firewalld's on the system bus (a reload forgets the
// zone bindings) and a signalfd. A change by another process starts a short
// wait for the rest of its burst (a flush and a reload come as many
// transactions), then one restore puts back everything missing in one batch.
// Its own restore's nftables announcements carry its own pid and are passed
// over, so it does not chase itself; what it adds to links is never counted.
// It subscribes before its first repair: a change that came before the
// subscription is found by that repair.
#include "portpub/watcher.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <utility>

#include "portpub/error.hpp"
#include "portpub/firewalld_signals.hpp"
#include "portpub/forwarder.hpp"
#include "portpub/link_events.hpp"
#include "portpub/nft_events.hpp"
#include "portpub/publisher.hpp"

namespace portpub {

namespace {

using Clock = RepairPacer::Clock;
constexpr auto kQuiet = std::chrono::milliseconds(10);     // the burst has ended
constexpr auto kLongest = std::chrono::milliseconds(100);  // a burst that goes on

}  // namespace

Watcher::Watcher(std::filesystem::path state_dir, WatchLock lock, bool while_published,
                 std::function<void(const std::string&)> log)
    : state_dir_(std::move(state_dir)),
      lock_(std::move(lock)),
      while_published_(while_published),
      log_(std::move(log)) {}

bool Watcher::repair() {
    bool mended = false;
    try {
        Publisher publisher(state_dir_);
        const auto result = publisher.restore();
        for (const auto& line : result.done)
            log_(line);
        for (const auto& line : result.failed)
            log_("cannot restore " + line);
        for (const auto& note : publisher.notes())
            log_(note);
        mended = !result.done.empty();
    } catch (const std::exception& e) {
        // The next change tries again; the watcher itself goes on.
        log_(std::string("repair failed: ") + e.what());
    }
    try {
        // The forward file's path is the one last applied, kept in the state.
        Forwarder forwarder(state_dir_, {});
        for (const auto& line : forwarder.restore()) {
            log_("forward put back: " + line);
            mended = true;
        }
    } catch (const std::exception& e) {
        log_(std::string("repair of the forwards failed: ") + e.what());
    }
    return mended;
}

bool Watcher::idle() {
    if (!while_published_) return false;
    StateStore store(state_dir_);
    auto lock = store.lock_shared();
    if (!nothing_to_watch(store)) return false;
    lock_.release();
    log_("nothing is published or forwarded any more: the watcher exits");
    return true;
}

void Watcher::run(int signal_fd, const std::function<void()>& ready) {
    NftEvents nft;
    LinkEvents links;
    FirewalldSignals firewalld;
    ready();
    pacer_.repaired(Clock::now(), repair());
    log_("watching nftables for " + state_dir_.string());
    bool pending = false;  // a burst of changes is being waited out
    Clock::time_point first{}, last{};
    auto due = [&] {
        return std::max(std::min(last + kQuiet, first + kLongest), pacer_.next_allowed());
    };
    for (;;) {
        int timeout = -1;
        if (pending)  // rounded up: a wait of 0 ms before the time would spin
            timeout = static_cast<int>(std::max<long>(
                0, std::chrono::ceil<std::chrono::milliseconds>(due() - Clock::now()).count()));
        pollfd fds[4] = {{signal_fd, POLLIN, 0},
                         {nft.fd(), POLLIN, 0},
                         {links.fd(), POLLIN, 0},
                         {firewalld.fd(), firewalld.events(), 0}};
        const int ready_fds = ::poll(fds, firewalld.fd() < 0 ? 3 : 4, timeout);
        if (ready_fds < 0) {
            if (errno == EINTR) continue;
            throw_errno("watch: cannot wait for changes");
        }
        if (fds[0].revents) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) == sizeof info) {
                if (info.ssi_signo == SIGCHLD) {
                    // Proxies a repair restarted, gone: no zombie is left.
                    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
                    }
                } else if (info.ssi_signo != SIGUSR1 || idle()) {
                    return;
                }
            }
        }
        bool changed = false;
        if (fds[1].revents && nft.drain()) changed = true;
        if (fds[2].revents && links.drain()) changed = true;
        if (firewalld.fd() >= 0 && fds[3].revents && firewalld.process()) changed = true;
        if (changed) {
            last = Clock::now();
            if (!pending) first = last;
            pending = true;
        }
        // A burst that goes on is repaired at its longest all the same.
        if (pending && Clock::now() >= due()) {
            pending = false;
            const auto at = Clock::now();
            if (pacer_.repaired(at, repair()))
                log_("something takes portpub's rules away again and again: repairs now wait " +
                     std::to_string(pacer_.gap().count()) + " ms or more apart");
            firewalld.connect();  // a system bus that started or came back
        }
    }
}

}  // namespace portpub
