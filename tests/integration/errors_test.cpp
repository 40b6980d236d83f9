// Every failure of `up` names the problem and leaves the machine as it was.
#include <netinet/in.h>

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <fstream>

#include "lab.hpp"

using namespace lab;

namespace {

// Runs `portpub up ...` expecting failure; checks the message and that the
// snapshot did not change.
void expect_failure(Lab& lab, const std::vector<std::string>& args, const std::string& message,
                    const std::function<void()>& in_child = {}) {
    const auto before = lab.snapshot();
    auto r = lab.portpub(args, in_child);
    INFO("stderr: " << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
    CHECK(r.out.empty());
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

std::vector<std::string> up_args(const std::string& netns, const std::string& spec,
                                 const std::string& subnet = kSubnet) {
    return {"up", "--netns", netns, "--subnet", subnet, "-p", spec};
}

// A seccomp filter that makes socket(AF_NETLINK, *, NETLINK_NETFILTER) fail
// as on a kernel built without nftables.
void deny_netfilter_netlink() {
#if defined(__x86_64__)
    constexpr unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr unsigned arch = AUDIT_ARCH_AARCH64;
#endif
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NETLINK_NETFILTER, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPROTONOSUPPORT),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        ::_exit(125);
}

}  // namespace

TEST_CASE("bad specs and bad paths fail before anything changes", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    expect_failure(lab, up_args(web, "8080:99999"), "invalid port spec '8080:99999'");
    expect_failure(lab, up_args(web, "localhost:8080:80"), "is not an IP address");
    expect_failure(lab, up_args("/run/netns/nope", "8080:80"),
                   "network namespace /run/netns/nope does not exist");
    std::ofstream("/run/netns/plain-file") << "not a namespace";
    expect_failure(lab, up_args("/run/netns/plain-file", "8080:80"), "is not a namespace file");
    expect_failure(lab, up_args("/run/netns", "8080:80"), "is not a namespace file");
    expect_failure(lab, up_args("/proc/self/ns/mnt", "8080:80"),
                   "is a mount namespace, not a network namespace");
    expect_failure(lab, up_args("/proc/self/ns/net", "8080:80"), "portpub's own network namespace");
    expect_failure(lab, up_args(web, "8080:80", "198.51.100.7/24"), "did you mean 198.51.100.0/24");
    expect_failure(lab, up_args("", "8080:80"),
                   "the network namespace path is empty; give the namespace file");
    auto missing = lab.portpub({"up", "-p", "8080:80"});
    CHECK(missing.status == 2);
    CHECK_THAT(missing.err, Catch::Contains("--netns"));
    // A negative timeout is not the largest one.
    for (const char* bad : {"-1", "0", "86401", "1.5", "x", ""}) {
        auto timeout = lab.portpub(
            {"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80", "--udp-timeout", bad});
        INFO("--udp-timeout '" << bad << "'");
        CHECK(timeout.status == 2);
        CHECK_THAT(timeout.err,
                   Catch::Contains("--udp-timeout takes whole seconds from 1 to 86400"));
    }
    CHECK_THAT(lab.portpub({"down", "--netns", ""}).err,
               Catch::Contains("the network namespace path is empty"));
}

TEST_CASE("a host port published by another container is refused, naming it", "[errors]") {
    Lab lab(0);
    auto web1 = lab.container("web1");
    auto web2 = lab.container("web2");
    lab.up(web1, {"8080:80"});
    expect_failure(lab, up_args(web2, "8080:80"),
                   "host port 8080/tcp is already published by container web1");
    expect_failure(lab, up_args(web2, "192.0.2.1:8080:80"), "already published by container web1");
    CHECK(lab.tcp("ext", kHostIp, 8080));
}

TEST_CASE("an exhausted subnet is refused", "[errors]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"}, {"--subnet", "198.51.100.0/30"});  // room for one container
    expect_failure(lab, up_args(b, "9090:80", "198.51.100.0/30"),
                   "subnet 198.51.100.0/30 has no free address left");
}

TEST_CASE("a subnet overlapping a route portpub does not own is refused", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    sh("ip link add other0 type veth peer name other1 && ip link set other0 up && "
       "ip route add 198.51.100.0/25 dev other0");
    expect_failure(lab, up_args(web, "8080:80"), "overlaps the route 198.51.100.0/25 dev other0");
}

TEST_CASE("missing CAP_NET_ADMIN is named", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    expect_failure(lab, up_args(web, "8080:80"), "needs CAP_NET_ADMIN", [] {
        // Root keeps no capability outside the bounding set across exec.
        if (::prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) != 0) ::_exit(125);
    });
}

TEST_CASE("a kernel without nftables is named", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    expect_failure(lab, up_args(web, "8080:80"), "no nftables support", deny_netfilter_netlink);
}

TEST_CASE("a failure after the bridge exists rolls everything back", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    // The veth cannot take the name eth0 there: up fails after it created the
    // bridge and turned on forwarding, and must undo both.
    sh("ip -n web link add eth0 type veth peer name eth0peer");
    expect_failure(lab, up_args(web, "8080:80"), "cannot create interface eth0 in /run/netns/web");
}

TEST_CASE("a stray map element is named, with the way to remove it", "[errors]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"});
    sh("nft add element inet portpub pub4 '{ tcp . 7070 : 198.51.100.9 . 80 }'");
    expect_failure(lab, up_args(b, "7070:80"),
                   "nft delete element inet portpub pub4 '{ tcp . 7070 }'");
}

TEST_CASE("an existing interface that does not fit is refused as the bridge", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    sh("ip link add br-other type bridge && ip addr add 198.51.100.1/25 dev br-other");
    expect_failure(
        lab, {"up", "--netns", web, "--subnet", kSubnet, "--bridge", "br-other", "-p", "8080:80"},
        "bridge br-other has address 198.51.100.1/25, not 198.51.100.1/24");
    expect_failure(lab,
                   {"up", "--netns", web, "--subnet", kSubnet, "--bridge", "ext0", "-p", "8080:80"},
                   "interface ext0 exists and is not a bridge");
}

TEST_CASE("an id in use for a live namespace is never taken over", "[errors]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"}, {"--id", "web"});
    expect_failure(lab, {"up", "--netns", b, "--subnet", kSubnet, "--id", "web", "-p", "9090:80"},
                   "container id web is already used for namespace /run/netns/a");
    CHECK(lab.answering("ext", kHostIp, 8080) == "a");
}

TEST_CASE("an id whose namespace is gone is taken over", "[errors]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"}, {"--id", "web"});
    lab.remove_container("a");  // exited without a down
    lab.up(b, {"8080:80"}, {"--id", "web"});
    CHECK(lab.answering("ext", kHostIp, 8080) == "b");
}

TEST_CASE("an up again that is refused leaves the earlier publication as it was", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"});
    const auto published = lab.snapshot();
    // Again for the same namespace, with what every check of up refuses
    // before it changes anything: the old publication must not go first.
    const std::pair<std::vector<std::string>, const char*> refusals[] = {
        {{"--ifname", "lo"}, "an interface of that name exists there; pass another --ifname"},
        {{"--bridge", "ext0"}, "interface ext0 exists and is not a bridge"},
        {{"--subnet", "192.0.2.0/24"}, "overlaps the route 192.0.2.0/24 dev ext0"},
        {{"--subnet6", "2001:db8::/64"}, "overlaps the route 2001:db8::/64 dev ext0"},
    };
    for (const auto& [options, why] : refusals) {
        std::vector<std::string> args{"up", "--netns", web, "-p", "9090:80"};
        args.insert(args.end(), options.begin(), options.end());
        if (options[0] != "--subnet") args.insert(args.end(), {"--subnet", kSubnet});
        INFO(options[0] << " " << options[1]);
        auto r = lab.portpub(args);
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains(why));
        CHECK_THAT(r.err, !Catch::Contains("was removed"));
        CHECK(lab.answering("ext", kHostIp, 8080) == "web");
        CHECK(diff_lines(published, lab.snapshot()) == "");
    }
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("an up again refused by its own bridge or a port taken meanwhile keeps the earlier one",
          "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    // A bridge of the admin's, with the address the first up asks for.
    sh("ip link add br-admin type bridge && ip addr add 198.51.100.1/24 dev br-admin && "
       "ip link set br-admin up");
    lab.up(web, {"8080:80"}, {"--bridge", "br-admin"});
    // Another subnet on that bridge: it keeps its address, so up cannot.
    auto other = lab.portpub({"up", "--netns", web, "--bridge", "br-admin", "--subnet",
                              "198.51.100.128/25", "-p", "8080:80"});
    CHECK(other.status == 1);
    CHECK_THAT(other.err, Catch::Contains("bridge br-admin has address 198.51.100.1/24"));
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    // The proxy died, and a program took the port it held: refused before
    // the kernel's rules, which still serve, are touched.
    const int proxy = *lab.proxy_pid("web");
    ::kill(proxy, SIGKILL);
    wait_until("the killed proxy to exit", 2000, [&] { return !alive(proxy); });
    lab.spawn("host", {ECHO_BIN, "squatter", "--tcp", "8080"});
    // (Not by connecting to it: the kernel still rewrites 127.0.0.1:8080.)
    wait_until("the squatter to listen on 8080", 2000,
               [&] { return !sh("ss -Htln 'sport = :8080'").empty(); });
    auto taken = lab.portpub(
        {"up", "--netns", web, "--bridge", "br-admin", "--subnet", kSubnet, "-p", "8080:80"});
    CHECK(taken.status == 1);
    CHECK_THAT(taken.err, Catch::Contains("host port 8080/tcp is in use on this host by pp-echo"));
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
    sh("ip link del br-admin");
}

TEST_CASE("an IPv6 subnet the host's own network has is refused", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    // ext0 has 2001:db8::1/64: a container there would take a neighbour's address.
    auto r = lab.portpub(
        {"up", "--netns", web, "--subnet", kSubnet, "--subnet6", "2001:db8::/64", "-p", "80"});
    CHECK(r.status == 1);
    CHECK(r.err ==
          "portpub: subnet 2001:db8::/64 overlaps the route 2001:db8::/64 dev ext0, which portpub "
          "does not own; pick another --subnet6\n");
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("a failure after the rules are in undoes them too", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    // The record cannot be written: the last step of up fails, after the
    // veth, bridge, forwarding and nftables steps succeeded.
    sh("mkdir -p " + lab.state_dir() + "/containers && chmod 0500 " + lab.state_dir() +
       "/containers");
    expect_failure(lab, up_args(web, "8080:80"),
                   "cannot create " + lab.state_dir() + "/containers/web.json", [] {
                       // Root writes anywhere unless it loses CAP_DAC_OVERRIDE.
                       if (::prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0) ::_exit(125);
                   });
    CHECK(sh("nft list ruleset").empty());
}

TEST_CASE("a host address that is not the host's is refused", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    expect_failure(
        lab, up_args(web, "192.0.2.99:8080:80"),
        "host address 192.0.2.99 in '192.0.2.99:8080:80' is not an address of this host");
}

TEST_CASE("a host port a local program listens on is refused, naming it", "[errors]") {
    Lab lab(0);
    auto web = lab.container("web");
    // This test process listens on 7000 in the lab's host namespace.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(7000);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    expect_failure(lab, up_args(web, "7000:80"),
                   "host port 7000/tcp is in use on this host by integration_tes (pid " +
                       std::to_string(::getpid()) + ") on 0.0.0.0:7000");
    expect_failure(lab, up_args(web, "6990-7010:80-100"), "host port 7000/tcp is in use");
    // A range to pick from skips it.
    auto r = lab.up(web, {"7000-7001:80"});
    CHECK(r.out == "80/tcp -> 0.0.0.0:7001\n80/tcp -> [::]:7001\n");
    ::close(fd);
}

TEST_CASE("a second state directory cannot take over the table", "[errors]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"});
    const auto before = lab.snapshot();
    auto r = run({PORTPUB_BIN, "up", "--netns", b, "--subnet", kSubnet, "-p", "9090:80",
                  "--state-dir", "/run/other-state"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("table inet portpub serves the portpub records in " +
                                      lab.state_dir() + ", not /run/other-state"));
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK_THAT(sh("nft list table inet portpub"),
               Catch::Contains("comment \"portpub records: " + lab.state_dir()));
}
