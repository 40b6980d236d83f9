// The watcher's lock and its start and settling from `up` and `down`. The lock is
// a POSIX record lock, not flock(): F_GETLK names the process that holds it, so
// there is no pid file to go stale, and a watcher killed with SIGKILL lets go of
// it with its last descriptor.
#include "portpub/watcher_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/forward_state.hpp"
#include "portpub/proxy_process.hpp"

namespace portpub {

namespace {

flock whole_file(short type) {
    flock l{};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    return l;
}

bool started_by_up(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    for (std::string arg; std::getline(in, arg, '\0');)
        if (arg == kWhilePublished) return true;
    return false;
}

}  // namespace

std::filesystem::path watch_lock_path(const std::filesystem::path& state_dir) {
    return state_dir / "watch.lock";
}

std::filesystem::path watch_log_path(const std::filesystem::path& state_dir) {
    return state_dir / "watch.log";
}

WatchLock::WatchLock(const std::filesystem::path& state_dir) {
    // A watcher before any up: the directory made as every command makes it
    // (0700). Never while an up waits for this watcher: it exists then.
    if (!std::filesystem::exists(state_dir)) StateStore(state_dir).lock();
    const auto path = watch_lock_path(state_dir);
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd_) throw_errno("cannot open " + path.string());
    auto l = whole_file(F_WRLCK);
    if (::fcntl(fd_.get(), F_SETLK, &l) == 0) {
        held_ = true;
        return;
    }
    if (errno != EACCES && errno != EAGAIN) throw_errno("cannot lock " + path.string());
}

void WatchLock::release() {
    fd_.reset();  // closing the descriptor drops the record lock
    held_ = false;
}

// Never called by a watcher: closing this descriptor would drop its own lock.
std::optional<RunningWatcher> running_watcher(const std::filesystem::path& state_dir) {
    UniqueFd fd(::open(watch_lock_path(state_dir).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;  // never a watcher here
    auto l = whole_file(F_WRLCK);
    if (::fcntl(fd.get(), F_GETLK, &l) != 0 || l.l_type == F_UNLCK) return std::nullopt;
    auto process = our_process(l.l_pid, kWatcherName);
    if (!process) return std::nullopt;
    return RunningWatcher{*process, started_by_up(process->pid)};
}

std::optional<std::string> start_watcher(const std::filesystem::path& state_dir) {
    if (running_watcher(state_dir)) return std::nullopt;
    try {
        auto ready = ready_pipe("watcher");
        const std::vector<std::string> args{"/proc/self/exe",
                                            "watch",
                                            "--state-dir",
                                            state_dir.string(),
                                            kWhilePublished,
                                            "--ready-fd",
                                            std::to_string(ready.write.get())};
        const auto [pid, said] = spawn_detached(args, {}, std::move(ready), "watcher");
        if (said == "ready") return std::nullopt;
        if (said == "another") {  // one started between the look and the start
            ::waitpid(pid, nullptr, 0);
            return std::nullopt;
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        if (said.rfind("error: ", 0) == 0) return said.substr(7);
        return "it did not answer within 5 s";
    } catch (const Error& e) {
        return e.what();
    }
}

void settle_watcher(const std::filesystem::path& state_dir) {
    const auto watcher = running_watcher(state_dir);
    if (!watcher || !watcher->while_published) return;
    UniqueFd pidfd(pidfd_open(watcher->process.pid));
    if (!pidfd || !process_running(watcher->process, kWatcherName)) return;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGUSR1, nullptr, 0) != 0) return;
    // Readable once it exited; it stays when something was published meanwhile.
    wait_readable(pidfd.get(), 5000);
}

bool nothing_to_watch(const StateStore& store) {
    const auto records = store.load_all();
    return records.usable.empty() && records.complete() &&
           load_applied_forwards(store).forwards.empty();
}

void settle_watcher_if_idle(const StateStore& store, const std::function<void()>& settle) {
    bool idle = false;
    {
        auto lock = store.lock_shared();
        idle = nothing_to_watch(store);
    }
    if (idle) settle();
}

}  // namespace portpub
