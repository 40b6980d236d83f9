// The proxies' sandbox on its own (src/kernel/sandbox.cpp), in forked
// children that first unshare a network and mount namespace of their own:
// after drop_privileges and confine_syscalls, /proc/self/status shows no
// root, no capability, no_new_privs and a seccomp filter; the calls a proxy
// makes still work; any other call, or a socket of another family, kills the
// child with SIGSYS.
#include "portpub/sandbox.hpp"

#include <netinet/in.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

struct Outcome {
    int status = 0;      // waitpid's
    std::string output;  // what the child wrote to its pipe
};

// Runs `body` in a child in namespaces of its own, sandboxed as a proxy is;
// `body` writes what it has to say to the fd it is given (write() is
// allowed) and the child leaves with _exit(0) (no exit handlers: nothing
// but the sandbox decides its fate).
Outcome sandboxed(const std::function<void(int out, int status_fd)>& body) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        try {
            if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) throw_errno("unshare");
            // (no mount a forbidden call might make reaches the machine's)
            if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
                throw_errno("make / private");
            // opened before the filter, read after: the kernel makes its
            // text at the first read
            const int status_fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
            if (status_fd < 0) throw_errno("open /proc/self/status");
            drop_privileges(proxy_user());
            confine_syscalls(proxy_syscalls());
            body(p[1], status_fd);
        } catch (const std::exception& e) {
            const std::string msg = std::string("error: ") + e.what();
            (void)!::write(p[1], msg.data(), msg.size());
            ::_exit(1);
        }
        ::_exit(0);
    }
    ::close(p[1]);
    Outcome o;
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        o.output.append(buf, n);
    ::close(p[0]);
    REQUIRE(::waitpid(pid, &o.status, 0) == pid);
    return o;
}

std::map<std::string, std::string> status_fields(const std::string& text) {
    std::map<std::string, std::string> fields;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        fields[line.substr(0, colon)] = value;
    }
    return fields;
}

}  // namespace

TEST_CASE("a sandboxed proxy is no longer root, has no capability, and runs under seccomp",
          "[sandbox]") {
    const auto user = proxy_user();
    const auto o = sandboxed([](int out, int status_fd) {
        char buf[8192];
        const ssize_t n = ::read(status_fd, buf, sizeof buf);
        if (n > 0) (void)!::write(out, buf, static_cast<std::size_t>(n));
    });
    INFO(o.output);
    REQUIRE(WIFEXITED(o.status));
    REQUIRE(WEXITSTATUS(o.status) == 0);
    const auto f = status_fields(o.output);
    const std::string uid = std::to_string(user.uid), gid = std::to_string(user.gid);
    CHECK(f.at("Uid") == uid + "\t" + uid + "\t" + uid + "\t" + uid);
    CHECK(f.at("Gid") == gid + "\t" + gid + "\t" + gid + "\t" + gid);
    CHECK(f.at("Groups").empty());
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
        INFO(set);
        CHECK(f.at(set) == "0000000000000000");
    }
    CHECK(f.at("NoNewPrivs") == "1");
    CHECK(f.at("Seccomp") == "2");
}

TEST_CASE("the calls a proxy makes still work in the sandbox", "[sandbox]") {
    const auto o = sandboxed([](int out, int) {
        // a UDP flow's socket and a TCP connect (refused: nothing listens in
        // this namespace, whose loopback is down) are the proxy's own calls
        const int udp = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int rc = ::connect(tcp, reinterpret_cast<sockaddr*>(&to), sizeof to);
        const std::string said = "udp " + std::to_string(udp >= 0) + " tcp " +
                                 std::to_string(tcp >= 0) + " connect " +
                                 std::to_string(rc == 0 ? 0 : errno);
        (void)!::write(out, said.data(), said.size());
    });
    INFO(o.output);
    REQUIRE(WIFEXITED(o.status));
    CHECK(WEXITSTATUS(o.status) == 0);
    CHECK(o.output.rfind("udp 1 tcp 1 connect ", 0) == 0);
    CHECK(o.output != "udp 1 tcp 1 connect 0");
}

TEST_CASE("any other call, or a socket of another family, kills a sandboxed proxy with SIGSYS",
          "[sandbox]") {
    // (name: the call libseccomp knows it by, and which the sanitizer build
    // may allow for its own run-time; then that case is left out)
    const std::map<std::string, std::function<void()>> forbidden{
        {"socket(AF_PACKET)", [] { (void)::socket(AF_PACKET, SOCK_RAW, 0); }},
        {"socket(AF_NETLINK)", [] { (void)::socket(AF_NETLINK, SOCK_RAW, 0); }},
        {"ptrace", [] { (void)::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); }},
        {"openat", [] { (void)::open("/etc/hostname", O_RDONLY); }},
        {"setns", [] { (void)::setns(0, CLONE_NEWNET); }},
        {"mount", [] { (void)::mount("none", "/mnt", "tmpfs", 0, nullptr); }},
        {"bpf", [] { (void)::syscall(SYS_bpf, 0, nullptr, 0); }},
    };
    const auto allowed = proxy_syscalls();
    for (const auto& [what, call] : forbidden) {
        if (std::find(allowed.begin(), allowed.end(), what) != allowed.end()) continue;
        SECTION(what) {
            const auto o = sandboxed([&](int out, int) {
                call();
                const std::string survived = "survived " + what;
                (void)!::write(out, survived.data(), survived.size());
            });
            INFO(o.output);
            REQUIRE(WIFSIGNALED(o.status));
            CHECK(WTERMSIG(o.status) == SIGSYS);
        }
    }
}

TEST_CASE("the sandbox refuses to run a proxy as root", "[sandbox]") {
    CHECK_THROWS_WITH(drop_privileges({0, 0, "root"}),
                      Catch::Contains("refusing to run a proxy as root"));
}
