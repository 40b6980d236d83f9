// Proxy processes from outside: started detached from this binary with only their own
// descriptors and a pipe to say they are ready; known by pid, start time, name, user and
// binary, so that stopping one (through a pidfd) or finding leftovers never hits another.
#include "portpub/proxy_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/naming.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace portpub {

namespace {

int pidfd_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// The start time of a running process with this pid and name (a proxy,
// the watcher); nullopt when the pid names no process, a zombie, or another
// program. Start times count clock ticks (10 ms), so the name tells apart two
// processes started in the same tick.
std::optional<std::uint64_t> start_time_of(pid_t pid, std::string_view name = kProxyName) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return std::nullopt;
    if (std::string_view(line).substr(open + 1, close - open - 1) != name) return std::nullopt;
    if (close + 2 < line.size() && line[close + 2] == 'Z') return std::nullopt;  // exited
    return parse_start_time(line);
}

// Whether every user id of the process (real, effective, saved, filesystem)
// is this process's effective one: a proxy runs as the portpub that started
// it. Another user can name a program portpub-proxy and give it any
// arguments; it cannot make it run as root.
bool runs_as_us(const std::string& proc_dir) {
    std::ifstream in(proc_dir + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("Uid:", 0) != 0) continue;
        std::istringstream ids(line.substr(4));
        unsigned long id = 0;
        int n = 0;
        for (; ids >> id; ++n)
            if (id != ::geteuid()) return false;
        return n == 4;
    }
    return false;
}

std::string exe_of(const std::string& proc_dir) {
    char buf[4096];
    const auto n = ::readlink((proc_dir + "/exe").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

// Whether the process runs the portpub binary (not a program that took its
// name): the same file behind /proc/PID/exe, or the file that was at this
// binary's path before an upgrade replaced it (the kernel then shows the path
// with " (deleted)"; only root can have put a file there).
bool runs_this_binary(const std::string& proc_dir) {
    struct stat theirs {};
    struct stat ours {};
    if (::stat((proc_dir + "/exe").c_str(), &theirs) == 0 && ::stat("/proc/self/exe", &ours) == 0 &&
        theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
        return true;
    const auto mine = exe_of("/proc/self");
    return !mine.empty() && exe_of(proc_dir) == mine + " (deleted)";
}

}  // namespace

bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
        int rc = ::poll(&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR) continue;
        return rc > 0;
    }
}

void become_proxy() {
    ::prctl(PR_SET_NAME, kProxyName);
    ::signal(SIGPIPE, SIG_IGN);
    (void)!::chdir("/");
}

int report_start_failure(int ready_fd, const std::exception& e) {
    const std::string line = std::string("error: ") + e.what() + "\n";
    (void)!::write(ready_fd, line.data(), line.size());
    return 1;
}

std::vector<int> inherited_fds(int ready_fd) {
    std::vector<int> inherited;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (auto* e = ::readdir(d)) {
            const int fd = std::atoi(e->d_name);
            if (fd > 2 && fd != ready_fd && fd != ::dirfd(d)) inherited.push_back(fd);
        }
        ::closedir(d);
    }
    return inherited;
}

ReadyPipe ready_pipe(std::string_view what) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0)
        throw_errno("cannot create a pipe for the " + std::string(what));
    return {UniqueFd(ready[0]), UniqueFd(ready[1])};
}

Spawned spawn_detached(const std::vector<std::string>& args, std::vector<int> keep, ReadyPipe ready,
                       std::string_view what) {
    keep.push_back(ready.write.get());
    std::vector<std::string> arg_copies = args;
    std::vector<char*> argv;
    for (auto& a : arg_copies)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    // Made before fork(): the child only makes system calls.
    const std::string cannot_run = "error: cannot run the " + std::string(what) + "\n";

    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("cannot start the " + std::string(what));
    if (pid == 0) {
        ::setsid();
        // The caller's blocked signals and ignored ones would outlive exec (the
        // watcher blocks SIGTERM for its signalfd, and restarts proxies).
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD})
            ::signal(sig, SIG_DFL);
        int null = ::open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3; ++fd)
            ::dup2(null, fd);
        // Whatever else the caller left open stays behind.
        if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
            // Kernels before 5.11: one descriptor at a time.
            if (DIR* d = ::opendir("/proc/self/fd")) {
                while (auto* e = ::readdir(d)) {
                    const int fd = std::atoi(e->d_name);
                    if (fd > 2 && fd != ::dirfd(d)) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
                }
                ::closedir(d);
            }
        }
        for (int fd : keep)
            ::fcntl(fd, F_SETFD, 0);
        ::execv(argv[0], argv.data());
        (void)!::write(ready.write.get(), cannot_run.data(), cannot_run.size());
        ::_exit(127);
    }
    ready.write.reset();

    std::string said;
    char c;
    while (said.size() < 4096 && wait_readable(ready.read.get(), 5000) &&
           ::read(ready.read.get(), &c, 1) == 1 && c != '\n')
        said += c;
    // The end of file after "ready": the process closed its end, its start-up
    // is over, and what the caller leaves behind is what it runs with.
    while (said == "ready" && wait_readable(ready.read.get(), 5000) &&
           ::read(ready.read.get(), &c, 1) == 1) {
    }
    return {pid, said};
}

ProcessId start_detached(const std::vector<std::string>& args, std::vector<int> keep,
                         ReadyPipe ready, std::string_view what) {
    const auto [pid, said] = spawn_detached(args, std::move(keep), std::move(ready), what);
    if (said != "ready") {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        if (said.rfind("error: ", 0) == 0)
            throw Error("the " + std::string(what) + " did not start: " + said.substr(7));
        throw Error("the " + std::string(what) + " did not start (no answer within 5 s)");
    }
    auto started = start_time_of(pid);
    if (!started) throw Error("the " + std::string(what) + " exited right after it started");
    return {pid, *started};
}

std::optional<std::uint64_t> parse_start_time(std::string_view line) {
    // "pid (comm) state ppid ...": comm may hold spaces and ')', so count from the last ')'.
    auto close = line.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = line.substr(close + 1);
    int field = 2;
    std::size_t at = 0;
    while (at < rest.size()) {
        while (at < rest.size() && rest[at] == ' ')
            ++at;
        auto end = rest.find(' ', at);
        if (end == std::string_view::npos) end = rest.size();
        if (++field == 22) {
            std::uint64_t v = 0;
            auto [p, ec] = std::from_chars(rest.data() + at, rest.data() + end, v);
            if (ec != std::errc{} || p != rest.data() + end) return std::nullopt;
            return v;
        }
        at = end;
    }
    return std::nullopt;
}

ProcessId start_proxy(const Publication& p, ProxyFds& fds, const std::filesystem::path& state_dir) {
    // The publication travels in a memfd: no file to clean up, no size limit.
    UniqueFd record(::memfd_create("portpub-publication", MFD_CLOEXEC));
    if (!record) throw_errno("cannot create the proxy's publication file");
    const std::string text = to_record(p).dump();
    if (::write(record.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw_errno("cannot write the proxy's publication");
    auto ready = ready_pipe("proxy");

    // Everything the child needs is made before fork().
    std::vector<int> keep{record.get()};
    if (fds.listen4) keep.push_back(fds.listen4.get());
    if (fds.listen6) keep.push_back(fds.listen6.get());
    for (const auto& s : fds.sockets)
        keep.push_back(s.get());
    const std::vector<std::string> args{"/proc/self/exe",
                                        "proxy",
                                        "--state-dir",
                                        state_dir.string(),
                                        "--id",
                                        p.id,
                                        "--publication-fd",
                                        std::to_string(record.get()),
                                        "--ready-fd",
                                        std::to_string(ready.write.get())};
    return start_detached(args, std::move(keep), std::move(ready), "proxy");
}

bool process_running(const ProcessId& id, std::string_view name) {
    if (id.pid <= 0) return false;
    auto t = start_time_of(id.pid, name);
    return t && *t == id.start_time;
}

void stop_process(const ProcessId& id, std::chrono::milliseconds grace, std::string_view name) {
    if (id.pid <= 0) return;
    // The pidfd pins the process; checking the start time after opening it
    // tells whether it is ours. Signals then go to it and no other.
    UniqueFd pidfd(pidfd_open(id.pid));
    if (!pidfd) return;  // gone
    auto t = start_time_of(id.pid, name);
    if (!t || *t != id.start_time) return;  // exited, and the pid may name another process now
    if (pidfd_signal(pidfd.get(), SIGTERM) != 0 && errno == ESRCH) return;
    if (!wait_readable(pidfd.get(), static_cast<int>(grace.count()))) {
        pidfd_signal(pidfd.get(), SIGKILL);
        if (!wait_readable(pidfd.get(), 2000))
            throw Error("the " + std::string(name) + " process (pid " + std::to_string(id.pid) +
                        ") did not stop");
    }
    ::waitpid(id.pid, nullptr, WNOHANG);  // reaps it when it is our own child
}

std::vector<FoundProxy> find_proxies(const std::filesystem::path& state_dir) {
    std::vector<FoundProxy> found;
    struct stat own {};
    if (::stat("/proc/self/ns/net", &own) != 0) return found;
    DIR* proc = ::opendir("/proc");
    if (!proc) throw_errno("cannot list /proc");
    std::unique_ptr<DIR, int (*)(DIR*)> closer(proc, ::closedir);
    while (auto* e = ::readdir(proc)) {
        int pid = 0;
        const std::string_view name = e->d_name;
        if (std::from_chars(name.data(), name.data() + name.size(), pid).ptr !=
                name.data() + name.size() ||
            pid <= 0)
            continue;
        auto started = start_time_of(pid);  // a portpub proxy, running
        if (!started) continue;
        const std::string dir = "/proc/" + std::string(name);
        // Another network namespace's proxy serves another host (a test
        // lab, say), whatever its state directory is called.
        struct stat ns {};
        if (::stat((dir + "/ns/net").c_str(), &ns) != 0 || ns.st_ino != own.st_ino ||
            ns.st_dev != own.st_dev)
            continue;
        if (!runs_as_us(dir) || !runs_this_binary(dir)) continue;
        std::ifstream in(dir + "/cmdline", std::ios::binary);
        std::vector<std::string> args;
        for (std::string arg; std::getline(in, arg, '\0');)
            args.push_back(arg);
        std::optional<std::string> dir_arg, id_arg;
        for (std::size_t i = 0; i + 1 < args.size(); ++i) {
            if (args[i] == "--state-dir") dir_arg = args[i + 1];
            if (args[i] == "--id") id_arg = args[i + 1];
        }
        // The id becomes a file name (its log) and a line of output: only
        // one `up` could have been given.
        if (dir_arg != state_dir.string() || !id_arg) continue;
        try {
            validate_id(*id_arg);
        } catch (const Error&) {
            continue;
        }
        found.push_back({*id_arg, {pid, *started}});
    }
    return found;
}

std::optional<ProcessId> our_process(int pid, std::string_view name) {
    if (pid <= 0) return std::nullopt;
    auto started = start_time_of(pid, name);
    const std::string dir = "/proc/" + std::to_string(pid);
    if (!started || !runs_as_us(dir) || !runs_this_binary(dir)) return std::nullopt;
    // Checked after the start time: the pid still names the process read.
    if (start_time_of(pid, name) != started) return std::nullopt;
    return ProcessId{pid, *started};
}

int pidfd_open(int pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace portpub
