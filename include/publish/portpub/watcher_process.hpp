// The one watcher of a state directory, from outside and from inside: it
// holds a POSIX write lock on STATE_DIR/watch.lock for as long as it runs, so
// the kernel says whether one runs and which process it is (F_GETLK), and a
// killed watcher leaves no stale claim. `up` starts one detached when none
// runs; the last `down` asks one `up` started to look whether it is still
// needed.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "portpub/fd.hpp"
#include "portpub/process_id.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

// The watcher's process name (PR_SET_NAME), part of its identity.
inline constexpr const char* kWatcherName = "portpub-watch";
// The option a watcher `up` started runs with: it exits once nothing is
// published or forwarded (a `portpub watch` of systemd's runs on).
inline constexpr const char* kWhilePublished = "--while-published";

std::filesystem::path watch_lock_path(const std::filesystem::path& state_dir);
// The log of a watcher `up` started (its stderr is /dev/null): STATE_DIR/watch.log.
std::filesystem::path watch_log_path(const std::filesystem::path& state_dir);

// The lock a watcher holds: tried once, without waiting.
class WatchLock {
  public:
    explicit WatchLock(const std::filesystem::path& state_dir);
    bool held() const { return held_; }
    // Lets go: another watcher may start from here on.
    void release();

  private:
    UniqueFd fd_;
    bool held_ = false;
};

struct RunningWatcher {
    ProcessId process;
    bool while_published = false;  // started by `up`
};
// The watcher holding the lock, when it is one of ours (its name, this
// binary, this user); nullopt when none holds it.
std::optional<RunningWatcher> running_watcher(const std::filesystem::path& state_dir);

// `up`'s side: starts `portpub watch --while-published` detached unless a
// watcher runs; returns once it watches. nullopt when one watches; otherwise
// why none does, for a note.
std::optional<std::string> start_watcher(const std::filesystem::path& state_dir);

// The last `down`'s side: asks a watcher `up` started (SIGUSR1) to look
// whether anything is left to watch, and waits up to 5 s for it to exit.
// Called without the state lock: the watcher takes it to look.
void settle_watcher(const std::filesystem::path& state_dir);

// Whether nothing is published or forwarded in `store`, read under the
// caller's lock: what a watcher `up` started waits for to exit. An unusable
// record may be a container's: it counts.
bool nothing_to_watch(const StateStore& store);
// After a command that took something away, without the state lock: when
// nothing is left to watch, settle_watcher().
void settle_watcher_if_idle(const StateStore& store, const std::function<void()>& settle);

}  // namespace portpub
