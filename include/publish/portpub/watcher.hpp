// `portpub watch`: waits for changes to nftables (a flush, `nft -f`, a table,
// chain or element deleted, iptables rules rewritten), for firewalld's
// reloads and restarts, and for addresses and links deleted, and puts back,
// through the publisher's and the forwarder's restore, what the records say
// is missing; a line of log for each repair. It never fights a removal: what
// down, gc and forward rm take away has no record left to restore.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "portpub/repair_pacer.hpp"
#include "portpub/watcher_process.hpp"

namespace portpub {

class Watcher {
  public:
    // `lock`: the state directory's watch lock, held. `while_published`:
    // run only while something is published or forwarded (the watcher `up`
    // starts).
    Watcher(std::filesystem::path state_dir, WatchLock lock, bool while_published,
            std::function<void(const std::string&)> log);
    // Subscribes, calls `ready`, repairs once, then repairs after each burst
    // of changes by another process (quiet for 10 ms, or 100 ms after its
    // first change; later when repairs keep mending, see RepairPacer), until
    // `signal_fd` (a signalfd) reads SIGTERM or SIGINT. SIGUSR1 asks a
    // `while_published` watcher to look whether it is still needed; SIGCHLD
    // reaps the proxies its repairs started, as they exit.
    void run(int signal_fd, const std::function<void()>& ready);

  private:
    // True when it put something back.
    bool repair();
    // For a `while_published` watcher asked by SIGUSR1: true, with the watch
    // lock let go, when there is nothing left to watch. Decided under the
    // state lock, so that an `up` either comes first and is watched, or comes
    // after and starts its own watcher. Only on that signal: the command that
    // sent it waits for the watcher to exit, so that no watcher is still
    // exiting when the last `down` returns.
    bool idle();

    std::filesystem::path state_dir_;
    WatchLock lock_;
    bool while_published_;
    std::function<void(const std::string&)> log_;
    RepairPacer pacer_;
};

}  // namespace portpub
