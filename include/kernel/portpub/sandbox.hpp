// What a proxy gives up once `up` has handed it its sockets: root (an
// unprivileged user of its own), every capability, the gaining of privilege
// (no_new_privs), and every system call it does not make (a seccomp filter
// that kills the process on any other).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace portpub {

// The user the proxies run as: the system user the Debian package creates,
// else, where it does not exist (a build from source), nobody's uid and gid.
inline constexpr const char* kProxyUser = "_portpub";

struct ProxyUser {
    uid_t uid = 65534;
    gid_t gid = 65534;
    std::string name = "nobody";
};

// kProxyUser from the user database, else 65534:65534 (nobody). Read while
// still root, before drop_privileges.
ProxyUser proxy_user();

// Drops every capability from the bounding and ambient sets, then becomes
// `user` (supplementary groups cleared, real, effective and saved ids), then
// clears what capabilities are left and sets no_new_privs. Throws Error on
// any step that fails, and if the process could still regain root.
void drop_privileges(const ProxyUser& user);

// The system calls a proxy makes once it runs: its event loop, relays,
// timers, log, memory and exit (and, in builds with sanitizers, what their
// run-time needs). socket() is allowed for AF_INET and AF_INET6 only.
std::vector<std::string> proxy_syscalls();

// Loads a seccomp filter allowing `allowed` (names as libseccomp knows them;
// a name this architecture lacks is skipped) and killing the process on any
// other call, or on socket() of another family. Needs no_new_privs (set by
// drop_privileges) or CAP_SYS_ADMIN.
void confine_syscalls(const std::vector<std::string>& allowed);

}  // namespace portpub
