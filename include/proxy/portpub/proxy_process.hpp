// Starting and stopping a container's proxy process. A process is known by
// its pid and its start time together, so that a recycled pid is never
// mistaken for it, let alone signalled.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portpub/process_id.hpp"
#include "portpub/proxy_sockets.hpp"

namespace portpub {

// The proxy's process name (PR_SET_NAME), part of its identity.
inline constexpr const char* kProxyName = "portpub-proxy";

// Field 22 of a /proc/PID/stat line; pure.
std::optional<std::uint64_t> parse_start_time(std::string_view stat_line);

// Runs `portpub proxy` (this same binary) for `p`, detached: its own session,
// stdin/stdout/stderr on /dev/null (a runtime waiting for a hook's stdout to
// close must not wait for the proxy), only its own sockets inherited. Returns
// once the proxy says it is ready; throws Error with its message otherwise.
ProcessId start_proxy(const Publication& p, ProxyFds& fds, const std::filesystem::path& state_dir);

// poll(2) until `fd` is readable, through EINTR; false after `timeout_ms`.
bool wait_readable(int fd, int timeout_ms);

// The descriptors this process was started with, above stderr, except
// `ready_fd`: a proxy's sockets, listed before it opens any of its own.
std::vector<int> inherited_fds(int ready_fd);

// The child's side, run first by a process start_detached started: names it
// kProxyName, ignores SIGPIPE (a peer gone mid-splice is then an error
// return, not a signal) and leaves the directory it was started in.
void become_proxy();

// The child's side of a failed start: "error: WHY\n" on `ready_fd`, for
// start_detached to throw. Returns 1, the exit status.
int report_start_failure(int ready_fd, const std::exception& e);

// The pipe on which a started process says "ready\n", or "error: WHY\n".
struct ReadyPipe {
    UniqueFd read, write;
};
// Throws Error "cannot create a pipe for the <what>".
ReadyPipe ready_pipe(std::string_view what);

// Runs `args` (args[0] "/proc/self/exe": this same binary) detached, as
// start_proxy says, with only `keep` and the pipe's write end inherited.
// Returns once it said it is ready; throws Error with its message
// otherwise. `what` names it in messages: "proxy", "forward proxy". A
// process known by a ProcessId has the name kProxyName.
ProcessId start_detached(const std::vector<std::string>& args, std::vector<int> keep,
                         ReadyPipe ready, std::string_view what);
// The same start, leaving the answer to the caller: the pid and the line the
// process said ("ready", "error: WHY", or what it chose), "" when it said
// nothing within 5 s. The process is not reaped: it is the caller's.
struct Spawned {
    int pid = 0;
    std::string said;
};
Spawned spawn_detached(const std::vector<std::string>& args, std::vector<int> keep, ReadyPipe ready,
                       std::string_view what);

// The proxies running in this network namespace for records in `state_dir`
// (as start_proxy was given it), found by their command line: what a `up`
// killed before it recorded a proxy's pid leaves behind.
struct FoundProxy {
    std::string id;
    ProcessId process;
};
std::vector<FoundProxy> find_proxies(const std::filesystem::path& state_dir);

// A pidfd for `pid` (pidfd_open(2)), or -1.
int pidfd_open(int pid);

// True while that very process runs (pid, start time and name all match).
bool process_running(const ProcessId& id, std::string_view name = kProxyName);

// SIGTERM, then SIGKILL after `grace`; returns once it is gone. Does nothing
// when the process is gone already, or when its pid now names another one.
void stop_process(const ProcessId& id,
                  std::chrono::milliseconds grace = std::chrono::milliseconds(2000),
                  std::string_view name = kProxyName);

// The process `pid` when it is one of ours: named `name`, running this
// binary as this user (what proxies are known by); nullopt otherwise.
std::optional<ProcessId> our_process(int pid, std::string_view name);

}  // namespace portpub
