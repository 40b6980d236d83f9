// Loopback rewritten in the kernel: the socket programs send a connection
// to a published port on 127.0.0.0/8 or ::1 straight to the container, and
// the proxy serves only what they leave (IPv6-only sockets, clients bound to
// loopback) and where they cannot be attached. The proxy is stopped with
// SIGSTOP to show which path a connection takes: a rewritten one does not
// notice, a proxied one does.
#include <netinet/in.h>

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "lab.hpp"
#include "portpub/crash_points.hpp"

using namespace lab;

namespace {

struct Address {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Address address(const std::string& ip, int port) {
    Address a;
    if (ip.find(':') == std::string::npos) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&a.ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(static_cast<uint16_t>(port));
        REQUIRE(::inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) == 1);
        a.len = sizeof(sockaddr_in);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<uint16_t>(port));
        REQUIRE(::inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr) == 1);
        a.len = sizeof(sockaddr_in6);
    }
    return a;
}

// "127.0.0.1:8080", "[::1]:8080", "[::ffff:127.0.0.1]:8080".
std::string text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
    }
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

struct Options {
    int family = 0;       // of the socket; 0: the address's
    bool v6only = false;  // IPV6_V6ONLY
    std::string bind_to;  // bound (port 0) before connect
    int timeout_ms = 2000;
};

// What a TCP client of the host sees: the echo server's reply, and the
// address getpeername gives; reply empty when nothing answered in time.
struct Seen {
    std::string reply, peer;
};

Seen tcp_client(const std::string& ip, int port, const Options& o = {}) {
    const auto to = address(ip, port);
    int fd = ::socket(o.family ? o.family : to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (o.v6only) {
        int one = 1;
        REQUIRE(::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0);
    }
    if (!o.bind_to.empty()) {
        const auto from = address(o.bind_to, 0);
        REQUIRE(::bind(fd, from.addr(), from.len) == 0);
    }
    timeval tv{o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    Seen seen;
    if (::connect(fd, to.addr(), to.len) == 0) {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
            seen.peer = text(peer);
        const std::string line = "hello\n";
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == 6 && readable(fd, o.timeout_ms)) {
            char buf[256];
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) seen.reply.assign(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return seen;
}

// One datagram to ip:port and its reply: the reply's text and the address
// recvfrom gives, over a connected socket or not.
Seen udp_client(const std::string& ip, int port, bool connected, int timeout_ms = 2000) {
    const auto to = address(ip, port);
    int fd = ::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const std::string msg = "datagram";
    Seen seen;
    bool sent = false;
    if (connected) {
        REQUIRE(::connect(fd, to.addr(), to.len) == 0);
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
            seen.peer = text(peer);
        sent = ::send(fd, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size());
    } else {
        sent = ::sendto(fd, msg.data(), msg.size(), 0, to.addr(), to.len) ==
               static_cast<ssize_t>(msg.size());
    }
    if (sent && readable(fd, timeout_ms)) {
        char buf[256];
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const auto n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
            seen.reply.assign(buf, static_cast<std::size_t>(n));
            if (!connected) seen.peer = text(from);
        }
    }
    ::close(fd);
    return seen;
}

// The proxy of `id` stopped (SIGSTOP) for the life of this object.
class ProxyStopped {
  public:
    ProxyStopped(Lab& lab, const std::string& id) : pid_(*lab.proxy_pid(id)) {
        ::kill(pid_, SIGSTOP);
    }
    ~ProxyStopped() { ::kill(pid_, SIGCONT); }
    ProxyStopped(const ProxyStopped&) = delete;
    ProxyStopped& operator=(const ProxyStopped&) = delete;

  private:
    int pid_;
};

std::string loopback_of(const Lab& lab, const std::string& id) {
    const auto ls = nlohmann::json::parse(lab.portpub({"ls", "--json"}).out);
    for (const auto& p : ls)
        if (p.at("id") == id) return p.at("loopback").get<std::string>();
    return "";
}

}  // namespace

TEST_CASE(
    "loopback is rewritten in the kernel: no proxy on the path, and the client sees what "
    "it dialed",
    "[loopback]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80", "5353:53/udp"});
    CHECK(loopback_of(lab, "web") == "kernel");
    CHECK_THAT(lab.portpub({"ls"}).out, Catch::Contains("   kernel   "));
    {
        ProxyStopped stopped(lab, "web");
        for (const char* ip : {"127.0.0.1", "127.0.0.2", "::1"}) {
            INFO(ip);
            const auto seen = tcp_client(ip, 8080);
            CHECK_THAT(seen.reply, Catch::StartsWith("web "));
            const std::string dialed = std::string(ip).find(':') == std::string::npos
                                           ? std::string(ip) + ":8080"
                                           : "[" + std::string(ip) + "]:8080";
            CHECK(seen.peer == dialed);
            for (const bool connected : {true, false}) {
                INFO((connected ? "connected UDP" : "unconnected UDP"));
                // The kernel refuses to send an unconnected IPv6 datagram to
                // a v4-mapped address: to ::1, the proxy's (below).
                if (!connected && std::string(ip) == "::1") continue;
                const auto dgram = udp_client(ip, 5353, connected);
                CHECK_THAT(dgram.reply, Catch::StartsWith("web "));
                const std::string port5353 = std::string(ip).find(':') == std::string::npos
                                                 ? std::string(ip) + ":5353"
                                                 : "[" + std::string(ip) + "]:5353";
                CHECK(dgram.peer == port5353);
            }
        }
        // [::ffff:127.0.0.1] on a dual-stack socket is IPv4 loopback.
        const auto mapped = tcp_client("::ffff:127.0.0.1", 8080);
        CHECK_THAT(mapped.reply, Catch::StartsWith("web "));
        CHECK(mapped.peer == "[::ffff:127.0.0.1]:8080");
        for (const bool connected : {true, false}) {
            INFO((connected ? "connected" : "unconnected") << " UDP to [::ffff:127.0.0.1]");
            const auto dgram = udp_client("::ffff:127.0.0.1", 5353, connected);
            CHECK_THAT(dgram.reply, Catch::StartsWith("web "));
            CHECK(dgram.peer == "[::ffff:127.0.0.1]:5353");
        }
    }
    REQUIRE(lab.portpub({"check"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    // Nothing attached at the cgroup, nothing pinned.
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE(
    "the proxy serves what the kernel leaves: IPv6-only sockets and clients bound to "
    "loopback",
    "[loopback]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    Options v6only;
    v6only.v6only = true;
    Options bound;
    bound.bind_to = "127.0.0.1";
    Options bound6;  // a dual-stack socket bound to the host's IPv6 address
    bound6.bind_to = kHostIp6;
    const auto by_proxy = [&](const std::string& ip, const Options& o) {
        CHECK_THAT(tcp_client(ip, 8080, o).reply, Catch::StartsWith("web "));
        Options brief = o;
        brief.timeout_ms = 500;
        ProxyStopped stopped(lab, "web");
        CHECK(tcp_client(ip, 8080, brief).reply.empty());
    };
    SECTION("an IPv6-only socket to ::1, the container IPv4-only") {
        by_proxy("::1", v6only);
    }
    SECTION("a client bound to 127.0.0.1 before it connects") {
        by_proxy("127.0.0.1", bound);
    }
    SECTION("a client bound to an IPv6 address, to ::1, the container IPv4-only") {
        by_proxy("::1", bound6);
    }
    SECTION("unconnected UDP to ::1, the container IPv4-only") {
        REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
        lab.up(web, {"5353:53/udp"});
        const auto dgram = udp_client("::1", 5353, false);
        CHECK_THAT(dgram.reply, Catch::StartsWith("web "));
        CHECK(dgram.peer == "[::1]:5353");
        ProxyStopped stopped(lab, "web");
        CHECK(udp_client("::1", 5353, false, 500).reply.empty());
    }
    SECTION("and with --loopback proxy, every client") {
        REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
        lab.up(web, {"8080:80"}, {"--loopback", "proxy"});
        CHECK(loopback_of(lab, "web") == "proxy");
        by_proxy("127.0.0.1", {});
        by_proxy("::1", {});
    }
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
}

TEST_CASE("where the kernel cannot rewrite, up falls back to the proxy and says why once",
          "[loopback]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    const std::string not_cgroup = lab.state_dir() + ".not-a-cgroup";
    std::filesystem::create_directories(not_cgroup);
    auto r = lab.up(web, {"8080:80"}, {"--cgroup", not_cgroup});
    CHECK_THAT(r.err,
               Catch::Contains("the kernel cannot rewrite connections to loopback here (cgroup " +
                               not_cgroup +
                               " is not a cgroup v2 directory): the proxy "
                               "serves 127.0.0.1 and ::1 for web"));
    CHECK(loopback_of(lab, "web") == "proxy");
    CHECK_THAT(lab.tcp("host", "127.0.0.1", 8080).value_or(""), Catch::StartsWith("web "));
    CHECK(lab.portpub({"check"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    std::filesystem::remove(not_cgroup);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("check names a missing rewrite and restore puts it back", "[loopback]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    sh("rm /sys/fs/bpf/portpub/connect4");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("web: socket program link connect4 is not pinned"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(restore.out, Catch::Contains("socket programs"));
    CHECK(lab.portpub({"check"}).status == 0);
    {
        ProxyStopped stopped(lab, "web");
        CHECK_THAT(tcp_client("127.0.0.1", 8080).reply, Catch::StartsWith("web "));
    }
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
}

TEST_CASE("a range of ports is rewritten port for port, and a block of it removed is put back",
          "[loopback]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    // 8020-8101 to 20-101: the map holds it as six blocks (8020-8023,
    // 8024-8031, 8032-8063, 8064-8095, 8096-8099, 8100-8101) a family.
    lab.up(web, {"8020-8101:20-101"});
    Options brief;
    brief.timeout_ms = 500;
    auto served = [&] {
        ProxyStopped stopped(lab, "web");
        std::string out;
        for (const char* ip : {"127.0.0.1", "::1"})
            for (int port : {8079, 8080, 8081, 8082}) {
                const auto seen = tcp_client(ip, port, brief);
                if (seen.reply.rfind("web ", 0) == 0)
                    out += std::string(ip) + ":" + std::to_string(port) + " ";
            }
        return out;
    };
    // The echo server listens on 80 and 81 only: each port goes to its own.
    CHECK(served() == "127.0.0.1:8080 127.0.0.1:8081 ::1:8080 ::1:8081 ");

    // The block of 8064-8095 for IPv4, deleted by hand: the key is the
    // prefix length (176 bits of proto, family, zero, address and port, less
    // 5), TCP, family 4, the address 0 (all of 127.0.0.0/8), the port.
    sh("bpftool map delete pinned /sys/fs/bpf/portpub/services key hex "
       "ab 00 00 00 06 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 1f 80 00 00");
    CHECK(served() == "::1:8080 ::1:8081 ");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("web: loopback rewrite tcp 127.0.0.0/8:8064-8095 -> "
                                          "198.51.100.2:64-95 is missing"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(restore.out, Catch::Contains("restored web: 1 loopback rewrite"));
    CHECK(lab.portpub({"check"}).status == 0);
    CHECK(served() == "127.0.0.1:8080 127.0.0.1:8081 ::1:8080 ::1:8081 ");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK_FALSE(std::filesystem::exists("/sys/fs/bpf/portpub"));
}

TEST_CASE("blocks a lost record left give way to a publication, and gc takes them alone",
          "[loopback]") {
    Lab lab(0);
    lab.watch = false;
    lab.up(lab.container("web"), {"9090:80"});  // the programs and their map
    const std::string map = "bpftool map update pinned /sys/fs/bpf/portpub/services key hex ";
    // To 198.51.100.99, a container gone without its record: 8080 alone to
    // port 80 (offset 80 - 8080 = 0xe0c0), later below all of 8064-8127, to
    // the same ports (offset 0).
    const std::string zeros16 = "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ";
    sh(map + "b0 00 00 00 06 04 00 00 " + zeros16 + "1f 90 00 00 value hex c6 33 64 63 " + zeros16 +
       "c0 e0 00 00");
    // And 8081 on 127.0.0.1 alone, which the programs look up before every
    // address of 127/8.
    sh(map + "b0 00 00 00 06 04 00 00 7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 " +
       "1f 91 00 00 value hex c6 33 64 63 " + zeros16 + "c0 e0 00 00");
    auto db = lab.container("db");
    lab.up(db, {"8020-8101:20-101"});
    sh(map + "aa 00 00 00 06 04 00 00 " + zeros16 + "1f 80 00 00 value hex c6 33 64 63 " + zeros16 +
       "00 00 00 00");
    auto answers = [&] {
        ProxyStopped web_stopped(lab, "web"), db_stopped(lab, "db");
        Options brief;
        brief.timeout_ms = 500;
        std::string out;
        for (int port : {8080, 8081, 9090})
            out += tcp_client("127.0.0.1", port, brief).reply.substr(0, 3);
        return out;
    };
    // up wrote db's range over the smaller blocks; the larger one lies below
    // db's blocks and holds only the ports past them.
    CHECK(answers() == "db db web");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("loopback rewrite tcp 127.0.0.0/8:8102-8127 -> "
                                          "198.51.100.99:8102-8127 is in no record"));
    CHECK(check.out.find("8080") == std::string::npos);
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("removed loopback rewrite tcp 127.0.0.0/8:8102-8127"));
    CHECK(answers() == "db db web");
    CHECK(lab.portpub({"check"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK_FALSE(std::filesystem::exists("/sys/fs/bpf/portpub"));
}

TEST_CASE("a restore killed after it put the programs back is finished by the next one",
          "[loopback]") {
    Lab lab(0);
    lab.watch = false;
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"});
    lab.up(db, {"9090:80"});
    // The map goes when its pin does: restore attaches anew, and puts back
    // one publication's entries, then the other's; killed after the first.
    sh("rm /sys/fs/bpf/portpub/services");
    auto killed =
        lab.portpub({"restore"}, [] { ::setenv(portpub::kCrashAtVariable, "restore:rewrite", 1); });
    REQUIRE(killed.status == 128 + SIGKILL);
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains(": loopback rewrite tcp 127.0.0.0/8:"));
    INFO(check.out);
    CHECK(lab.portpub({"restore"}).status == 0);
    CHECK(lab.portpub({"check"}).status == 0);
    {
        ProxyStopped web_stopped(lab, "web"), db_stopped(lab, "db");
        CHECK_THAT(tcp_client("127.0.0.1", 8080).reply, Catch::StartsWith("web "));
        CHECK_THAT(tcp_client("127.0.0.1", 9090).reply, Catch::StartsWith("db "));
    }
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("only the sockets of the host's namespace, in the cgroup given, are rewritten",
          "[loopback]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    lab.up(lab.container("db"), {"9090:80"});
    // db's own loopback has nothing on 8080; rewritten, it would reach web,
    // which it can: they share the bridge.
    REQUIRE(lab.answering("db", "198.51.100.2", 80) == "web");
    CHECK_FALSE(lab.tcp("db", "127.0.0.1", 8080, 500));
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);

    // --cgroup: a cgroup below the lab's; this process stays outside it.
    const std::string sub = cgroup_root() + "/clients";
    REQUIRE(std::filesystem::create_directory(sub));
    lab.up(web, {"8080:80"}, {"--cgroup", sub});
    CHECK(loopback_of(lab, "web") == "kernel");
    {
        ProxyStopped stopped(lab, "web");
        Options brief;
        brief.timeout_ms = 500;
        CHECK(tcp_client("127.0.0.1", 8080, brief).reply.empty());  // the proxy's
        // A client that moves itself into the cgroup first is rewritten.
        const auto inside =
            run({"bash", "-c",
                 "echo $$ > " + sub +
                     "/cgroup.procs && exec 3<>/dev/tcp/127.0.0.1/8080 && echo hi >&3 && "
                     "timeout 2 head -1 <&3"});
        CHECK_THAT(inside.out, Catch::StartsWith("web "));
    }
    // Another up may not ask for another cgroup while these are attached.
    auto other = lab.portpub({"up", "--netns", lab.container("app"), "--subnet", kSubnet,
                              "--cgroup", cgroup_root(), "-p", "9090:80"});
    CHECK(other.status == 1);
    CHECK_THAT(other.err, Catch::Contains("the socket programs are attached at cgroup " + sub));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(lab.portpub({"ls"}).out.find("app") == std::string::npos);
    std::filesystem::remove(sub);
}

TEST_CASE("a mapping bound to one loopback address is rewritten for that address only",
          "[loopback]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"127.0.0.2:8081:81"});
    ProxyStopped stopped(lab, "web");
    const auto seen = tcp_client("127.0.0.2", 8081);
    CHECK_THAT(seen.reply, Catch::StartsWith("web "));
    CHECK(seen.peer == "127.0.0.2:8081");
    Options brief;
    brief.timeout_ms = 500;
    CHECK(tcp_client("127.0.0.1", 8081, brief).reply.empty());  // nothing there
    CHECK(tcp_client("::1", 8081, brief).reply.empty());
}
