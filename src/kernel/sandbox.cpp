// The proxies' sandbox: the privilege drop in the order the kernel needs
// (the bounding set while CAP_SETPCAP is there, then the ids, then what is
// left), checked afterwards, and the seccomp allowlist built with libseccomp.
#include "portpub/sandbox.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "portpub/error.hpp"

namespace portpub {

ProxyUser proxy_user() {
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(kProxyUser, &entry, buf.data(), buf.size(), &found) == 0 && found &&
        found->pw_uid != 0 && found->pw_gid != 0)
        return {found->pw_uid, found->pw_gid, kProxyUser};
    return {};
}

namespace {

void set_capabilities_to_zero() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0)
        throw_errno("sandbox: cannot read the capabilities");
    for (auto& d : data)
        d = {};
    if (::syscall(SYS_capset, &header, data) != 0)
        throw_errno("sandbox: cannot clear the capabilities");
}

}  // namespace

void drop_privileges(const ProxyUser& user) {
    if (user.uid == 0 || user.gid == 0)
        throw Error("sandbox: refusing to run a proxy as root (uid " + std::to_string(user.uid) +
                    ", gid " + std::to_string(user.gid) + ")");
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the
    // change of user takes away.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            throw_errno("sandbox: cannot drop capability " + std::to_string(cap) +
                        " from the bounding set");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        throw_errno("sandbox: cannot clear the ambient capabilities");
    if (::setgroups(0, nullptr) != 0) throw_errno("sandbox: cannot clear the supplementary groups");
    if (::setresgid(user.gid, user.gid, user.gid) != 0)
        throw_errno("sandbox: cannot become group " + std::to_string(user.gid));
    // Without PR_SET_KEEPCAPS (off by default) this also empties the
    // permitted and effective sets; the inheritable set is cleared below.
    if (::setresuid(user.uid, user.uid, user.uid) != 0)
        throw_errno("sandbox: cannot become user " + user.name + " (uid " +
                    std::to_string(user.uid) + ")");
    set_capabilities_to_zero();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        throw_errno("sandbox: cannot set no_new_privs");
    // What must now fail does.
    if (::setresuid(0, 0, 0) == 0 || ::setresgid(0, 0, 0) == 0)
        throw Error("sandbox: the process could become root again after the drop");
}

std::vector<std::string> proxy_syscalls() {
    std::vector<std::string> calls{
        // the event loop, its timer and signals
        "epoll_wait", "epoll_pwait", "epoll_ctl", "read", "rt_sigreturn", "rt_sigprocmask",
        "restart_syscall", "clock_gettime", "clock_nanosleep", "gettimeofday",
        // sockets: accept, connect, relay (splice through pipes), UDP flows
        "accept4", "socket", "connect", "setsockopt", "getsockopt", "getsockname", "getpeername",
        "recvmsg", "recvfrom", "sendmsg", "sendto", "splice", "pipe2", "fcntl", "shutdown", "close",
        // the log (opened before), and the namespace it watches
        "write", "writev", "lseek", "ftruncate", "copy_file_range", "fstat", "newfstatat", "statx",
        "stat",
        // memory, threads of the C library, exit
        "brk", "mmap", "munmap", "mremap", "madvise", "futex", "getpid", "gettid", "tgkill", "exit",
        "exit_group"};
#if defined(__SANITIZE_ADDRESS__)
    // What AddressSanitizer, LeakSanitizer (its stop-the-world tracer thread)
    // and UBSan need at run time and at exit, in the sanitizer build alone.
    for (const char* c :
         {"mprotect", "rt_sigaction", "sigaltstack", "prctl", "clone", "clone3", "ptrace", "wait4",
          "getppid", "sched_yield", "open", "openat", "getdents", "getdents64", "readlink",
          "readlinkat", "ioctl", "pread64", "sched_getaffinity"})
        calls.emplace_back(c);
#endif
    return calls;
}

void confine_syscalls(const std::vector<std::string>& allowed) {
    std::unique_ptr<void, decltype(&::seccomp_release)> ctx(::seccomp_init(SCMP_ACT_KILL_PROCESS),
                                                            &::seccomp_release);
    if (!ctx) throw Error("sandbox: cannot make a seccomp filter (seccomp_init)");
    auto check = [](int rc, const std::string& what) {
        if (rc < 0) throw Error("sandbox: " + what + ": " + std::string(std::strerror(-rc)));
    };
    for (const auto& name : allowed) {
        const int nr = ::seccomp_syscall_resolve_name(name.c_str());
        if (nr == __NR_SCMP_ERROR) continue;  // not a call of this architecture
        if (name == "socket") {
            for (int family : {AF_INET, AF_INET6})
                check(::seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                                         SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))),
                      "cannot allow socket() of family " + std::to_string(family));
            continue;
        }
        check(::seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0), "cannot allow " + name);
    }
    check(::seccomp_load(ctx.get()), "cannot load the seccomp filter");
}

}  // namespace portpub
