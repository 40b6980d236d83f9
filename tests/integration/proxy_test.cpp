// The userland proxy: loopback and IPv6 clients reach the container through
// one proxy process per container, which holds the published ports, lives as
// long as the container, and copes with many ports and many connections.
#include <netinet/in.h>

#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "lab.hpp"

using namespace lab;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out)
        c = static_cast<char>(gen());
    return out;
}

// 127.0.0.1:port as a socket address.
sockaddr_in loopback4(int port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

// Whether the process is gone within `ms`.
bool gone_within(int pid, int ms) {
    return eventually(ms, [pid] { return !alive(pid); });
}

// Binding host port `port` in the lab's host namespace, without SO_REUSEADDR.
int try_bind(int family, int type, int port) {
    int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *sa;
    } else {
        int one = 1;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *sa;
    }
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
    int err = errno;
    ::close(fd);
    return rc == 0 ? 0 : err;
}

// A server starting on host port `port` as most do (SO_REUSEADDR, bind,
// listen on every address): 0, or the errno of the step that failed.
int try_listen(int family, int port) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = sizeof(sockaddr_in);
    reinterpret_cast<sockaddr_in*>(&ss)->sin_family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(port));
    if (family == AF_INET6) {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        *sa = {};
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *sa;
    }
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
    if (rc == 0) rc = ::listen(fd, 1);
    int err = errno;
    ::close(fd);
    return rc == 0 ? 0 : err;
}

// The local ports of this namespace's TCP sockets in `state`, as
// /proc/net/tcp and tcp6 write it ("0A": listening, "06": TIME_WAIT).
std::set<int> tcp_ports(const std::string& state) {
    std::set<int> ports;
    for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(path);
        std::string line;
        std::getline(in, line);  // the header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, st;
            fields >> slot >> local >> remote >> st;
            const auto colon = local.find(':');  // ADDRESS:PORT, both hex
            if (colon != std::string::npos && st == state)
                ports.insert(std::stoi(local.substr(colon + 1), nullptr, 16));
        }
    }
    return ports;
}

}  // namespace

TEST_CASE("127.0.0.1 and ::1 reach the container, byte for byte, with half-close", "[proxy]") {
    Lab lab(0);
    // The proxy's loopback, or the kernel's with the proxy beside it.
    lab.loopback = GENERATE("kernel", "proxy");
    INFO("--loopback " << lab.loopback);
    auto web = lab.container("web");
    lab.up(web, {"8007:7", "8007:7/udp"});
    for (const char* ip : {"127.0.0.1", "::1"}) {
        for (std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{65543},
                                 std::size_t{1} << 20, std::size_t{64} << 20}) {
            INFO(ip << " TCP, " << size << " bytes");
            const auto sent = random_bytes(size, static_cast<unsigned>(size));
            auto back = lab.echo_tcp("host", ip, 8007, sent);
            REQUIRE(back);
            CHECK(back->size() == sent.size());
            CHECK((*back == sent));
        }
        for (std::size_t size :
             {std::size_t{1}, std::size_t{1400}, std::size_t{9000}, std::size_t{65000}}) {
            INFO(ip << " UDP, " << size << " bytes");
            const auto sent = random_bytes(size, static_cast<unsigned>(size) + 1);
            auto back = lab.echo_udp("host", ip, 8007, sent);
            REQUIRE(back);
            CHECK((*back == sent));
        }
    }
    // UDP replies come from the address the client sent to: a connected
    // client drops a reply from 127.0.0.1 when it sent to 127.0.0.2.
    auto reply = lab.echo_udp("host", "127.0.0.2", 8007, "from the address I used");
    REQUIRE(reply);
    CHECK(*reply == "from the address I used");
    REQUIRE(lab.echo_tcp("host", "127.0.0.2", 8007, "tcp too"));
}

TEST_CASE("an IPv4-only container is reachable from IPv6 clients", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto r = lab.up(web, {"8080:80", "5353:53/udp", "8007:7"});
    CHECK_THAT(r.out, Catch::Contains("80/tcp -> [::]:8080"));
    CHECK(lab.answering("ext", kHostIp6, 8080) == "web");
    auto dgram = lab.udp("ext", kHostIp6, 5353);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(0) == "web");
    const auto sent = random_bytes(1 << 20, 7);
    auto back = lab.echo_tcp("ext", kHostIp6, 8007, sent);
    REQUIRE(back);
    CHECK((*back == sent));
    // The host to its own IPv6 address, too.
    REQUIRE(lab.tcp("host", kHostIp6, 8080));
}

TEST_CASE("a 127.0.0.1 mapping is served on the host's loopback only", "[proxy]") {
    Lab lab(0);
    // The proxy's loopback, or the kernel's with the proxy beside it.
    lab.loopback = GENERATE("kernel", "proxy");
    INFO("--loopback " << lab.loopback);
    auto web = lab.container("web");
    auto r = lab.up(web, {"127.0.0.1:8081:81", "127.0.0.1:5454:54/udp", "8082:80", "5455:53/udp"});
    CHECK_THAT(r.out, Catch::StartsWith("81/tcp -> 127.0.0.1:8081\n54/udp -> 127.0.0.1:5454\n"));
    CHECK(lab.answering("host", "127.0.0.1", 8081) == "web");
    REQUIRE(lab.udp("host", "127.0.0.1", 5454));
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8081, 1000));
    CHECK_FALSE(lab.tcp("host", kHostIp, 8081, 1000));
    // A neighbour that sends packets for 127.0.0.1 to the host (CVE-2020-8558)
    // gets nothing: portpub never sets route_localnet.
    sh("ip netns exec ext sysctl -qw net.ipv4.conf.all.route_localnet=1 "
       "net.ipv4.conf.eth0.route_localnet=1 && "
       "ip -n ext rule add pref 100 lookup local && ip -n ext rule del pref 0 lookup local && "
       "ip -n ext rule add to 127.0.0.1 lookup 100 pref 10 && "
       "ip -n ext route add 127.0.0.1 via 192.0.2.1 dev eth0 table 100");
    CHECK_THAT(sh("ip -n ext route get 127.0.0.1"), Catch::Contains("via 192.0.2.1 dev eth0"));
    CHECK_FALSE(lab.tcp("ext", "127.0.0.1", 8081, 1000));
    // Nor through a port published on every address, which it reaches as
    // 192.0.2.1.
    REQUIRE(lab.tcp("ext", kHostIp, 8082));
    REQUIRE(lab.udp("ext", kHostIp, 5455));
    CHECK_FALSE(lab.tcp("ext", "127.0.0.1", 8082, 1000));
    CHECK_FALSE(lab.udp("ext", "127.0.0.1", 5455, 1000));
    CHECK_FALSE(lab.udp("ext", "127.0.0.1", 5454, 1000));
    CHECK(sh("cat /proc/sys/net/ipv4/conf/all/route_localnet") == "0\n");
}

TEST_CASE("1,000 concurrent connections through one proxy all complete", "[proxy]") {
    Lab lab(0);
    lab.loopback = "proxy";  // what goes through the proxy
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    const int pid = *lab.proxy_pid("web");
    const int idle = fd_count(pid);
    // 1,000 connections open at once, then each sends its line and reads the reply.
    std::vector<int> fds;
    for (int i = 0; i < 1000; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa = loopback4(8080);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        fds.push_back(fd);
    }
    // All 1,000 relays open at once: each holds two sockets at least.
    wait_until("the proxy to hold 2,000 sockets", 5000,
               [&] { return fd_count(pid) >= idle + 2000; });
    int answered = 0;
    for (int fd : fds) {
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)!::write(fd, "hi\n", 3);
        char buf[128];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0 && std::string(buf, static_cast<std::size_t>(n)).rfind("web ", 0) == 0)
            ++answered;
        ::close(fd);
    }
    CHECK(answered == 1000);
    // Every relay is gone again; idle pipes stay pooled for reuse.
    // The pool keeps at most 256 pipes.
    wait_until("the proxy to close the relays' sockets", 5000,
               [&] { return fd_count(pid) <= idle + 2 * 256; });
    CHECK(lab.tcp("host", "127.0.0.1", 8080));
}

TEST_CASE("10,000 ports cost the proxy no more descriptors than one", "[proxy]") {
    Lab lab(0);
    auto one = lab.container("one");
    auto many = lab.container("many");
    lab.up(one, {"7000:80"}, {"--no-reserve"});
    std::vector<std::string> specs;
    for (int port = 10000; port < 20000; ++port)
        specs.push_back(std::to_string(port) + ":80");
    lab.up(many, specs, {"--no-reserve"});
    CHECK(fd_count(*lab.proxy_pid("many")) == fd_count(*lab.proxy_pid("one")));
    for (int port : {10000, 15000, 19999}) {
        INFO("port " << port);
        for (const char* ip : {"127.0.0.1", "::1"}) {
            CHECK(lab.answering("host", ip, port) == "many");
        }
    }
    REQUIRE(lab.tcp("host", "127.0.0.1", 7000));
}

TEST_CASE("published ports are held: no other program can bind them", "[proxy]") {
    Lab lab(0);
    // The proxy's loopback, or the kernel's with the proxy beside it.
    lab.loopback = GENERATE("kernel", "proxy");
    INFO("--loopback " << lab.loopback);
    auto web = lab.container("web");
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8080) == 0);
    lab.up(web, {"8080:80", "5353:53/udp"});
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8080) == EADDRINUSE);
    CHECK(try_bind(AF_INET6, SOCK_STREAM, 8080) == EADDRINUSE);
    CHECK(try_bind(AF_INET, SOCK_DGRAM, 5353) == EADDRINUSE);
    CHECK(try_bind(AF_INET6, SOCK_DGRAM, 5353) == EADDRINUSE);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8080) == 0);
    // --no-reserve leaves TCP ports free to bind, but for the first: the
    // proxy listens there for what nft redirects to it.
    lab.up(web, {"8080:80", "8081:81"}, {"--no-reserve"});
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8081) == 0);
    CHECK(try_bind(AF_INET6, SOCK_STREAM, 8081) == 0);
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8080) == EADDRINUSE);
}

TEST_CASE("holding more ports than descriptors allow fails, naming the limit", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    auto r = lab.portpub(
        {"up", "--netns", web, "--subnet", kSubnet, "-p", "10000-12999:10000-12999"}, [] {
            rlimit lim{2048, 2048};
            ::setrlimit(RLIMIT_NOFILE, &lim);
        });
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("limit of 2048 (RLIMIT_NOFILE)"));
    CHECK_THAT(r.err, Catch::Contains("--no-reserve"));
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("a UDP port a local program holds is refused, naming it", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(5353);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    const auto before = lab.snapshot();
    auto r = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "5353:53/udp"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(
                          "host port 5353/udp is in use on this host by integration_tes (pid " +
                          std::to_string(::getpid()) + ")"));
    CHECK(diff_lines(before, lab.snapshot()) == "");
    ::close(fd);
}

TEST_CASE("the proxy exits when the container's namespace goes, without down", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    const int pid = *lab.proxy_pid("web");
    REQUIRE(alive(pid));
    lab.remove_container("web");
    CHECK(gone_within(pid, 2000));
    // Not "run up again": the namespace is gone, and gc is what removes it.
    CHECK_THAT(lab.portpub({"ls"}).out, Catch::Contains("namespace gone (portpub gc removes it)"));
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
}

TEST_CASE("the proxy exits when the container's process exits", "[proxy]") {
    Lab lab(0);
    lab.container("web");
    // The namespace as a runtime names it: through the container's process.
    const std::string path = "/proc/" + std::to_string(lab.server_pid("web")) + "/ns/net";
    lab.up(path, {"8080:80"}, {"--id", "web"});
    const int pid = *lab.proxy_pid("web");
    REQUIRE(lab.tcp("host", "127.0.0.1", 8080));
    lab.kill_servers("web");  // the namespace stays (/run/netns/web), the process is gone
    CHECK(gone_within(pid, 2000));
    // Told by the pidfd, not by the namespace file vanishing (it vanishes too).
    CHECK_THAT(sh("cat " + lab.state_dir() + "/logs/web.log"),
               Catch::Contains("the container's process exited"));
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
}

TEST_CASE("a killed proxy is shown, up again restores it, down stops it", "[proxy]") {
    Lab lab(0);
    lab.loopback = "proxy";  // what goes through the proxy
    lab.watch = false;       // what a user sees and mends by hand
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    const int first = *lab.proxy_pid("web");
    ::kill(first, SIGKILL);
    REQUIRE(gone_within(first, 2000));
    CHECK_FALSE(lab.tcp("host", "127.0.0.1", 8080, 1000));
    CHECK_THAT(lab.portpub({"ls"}).out, Catch::Contains("dead (run up again)"));
    lab.up(web, {"8080:80"});
    const int second = *lab.proxy_pid("web");
    CHECK(second != first);
    REQUIRE(lab.tcp("host", "127.0.0.1", 8080));
    CHECK_THAT(lab.portpub({"ls"}).out, Catch::Contains("pid " + std::to_string(second)));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK_FALSE(alive(second));
    CHECK_FALSE(lab.tcp("host", "127.0.0.1", 8080, 1000));
}

TEST_CASE("without the proxy (--no-proxy) loopback is the kernel's, or not served, and up says so",
          "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto kernel = lab.up(web, {"8080:80"}, {"--no-proxy"});
    CHECK_THAT(kernel.err, Catch::Contains("--no-proxy: connections from IPv6 clients of other "
                                           "hosts are not served for web"));
    CHECK_FALSE(lab.proxy_pid("web"));
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK(lab.answering("host", "::1", 8080) == "web");
    CHECK_FALSE(lab.tcp("ext", kHostIp6, 8080, 1000));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    auto r = lab.up(web, {"8080:80"}, {"--no-proxy", "--loopback", "proxy"});
    CHECK(r.out == "80/tcp -> 0.0.0.0:8080\n");
    CHECK_THAT(
        r.err,
        Catch::Contains(
            "--no-proxy: connections to 127.0.0.1, ::1 and from IPv6 clients are not served"));
    CHECK_FALSE(lab.proxy_pid("web"));
    CHECK_FALSE(lab.tcp("host", "127.0.0.1", 8080, 1000));
    REQUIRE(lab.tcp("ext", kHostIp, 8080));
    auto refused = lab.portpub(
        {"up", "--netns", web, "--subnet", kSubnet, "--no-proxy", "-p", "127.0.0.1:8081:81"});
    CHECK(refused.status == 1);
    CHECK_THAT(refused.err, Catch::Contains("drop --no-proxy"));
}

TEST_CASE("SCTP mappings get kernel NAT, and up says loopback SCTP is not served", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    int probe = ::socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    const bool sctp = probe >= 0;
    if (probe >= 0) ::close(probe);
    auto r = lab.up(web, {"9999:9999/sctp"});
    CHECK(r.out == "9999/sctp -> 0.0.0.0:9999\n");
    CHECK_FALSE(lab.proxy_pid("web"));  // nothing for a proxy to serve
    if (!sctp) CHECK_THAT(r.err, Catch::Contains("this kernel has no SCTP"));
    CHECK_THAT(sh("nft list map inet portpub pub4"),
               Catch::Contains("sctp . 9999 : 198.51.100.2 . 9999"));
}

TEST_CASE("down stops the proxy and leaves the machine as it was", "[proxy]") {
    Lab lab(1);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80", "127.0.0.1:8081:81", "5353:53/udp", "[::1]:8082:80"});
    const int pid = *lab.proxy_pid("web");
    REQUIRE(lab.tcp("host", "::1", 8082));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK_FALSE(alive(pid));
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("the proxy is detached: its own session, stdio on /dev/null", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});  // returns: the proxy does not hold up's stdout pipe
    const int pid = *lab.proxy_pid("web");
    for (int fd : {0, 1, 2}) {
        INFO("fd " << fd);
        CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" +
                                            std::to_string(fd)) == "/dev/null");
    }
    CHECK(::getsid(pid) == pid);
}

TEST_CASE("down never signals a recycled pid", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    const int proxy = *lab.proxy_pid("web");
    // The record now names another live process under the proxy's pid slot,
    // as if the proxy had died and its pid been reused.
    const int other = lab.server_pid("web");
    const std::string record = lab.state_dir() + "/containers/web.json";
    sh("sed -i 's/\"pid\": " + std::to_string(proxy) + "/\"pid\": " + std::to_string(other) +
       "/' " + record);
    REQUIRE_THAT(sh("cat " + record), Catch::Contains("\"pid\": " + std::to_string(other)));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(alive(other));  // its start time is not the proxy's: left alone
    ::kill(proxy, SIGTERM);
}

TEST_CASE("UDP flows end after the idle timeout", "[proxy]") {
    Lab lab(0);
    lab.loopback = "proxy";  // what goes through the proxy
    auto web = lab.container("web");
    // 3 s: room for a loaded machine between the reply and the count below.
    lab.up(web, {"5353:53/udp"}, {"--udp-timeout", "3"});
    const int pid = *lab.proxy_pid("web");
    const int idle = fd_count(pid);
    REQUIRE(lab.udp("host", "127.0.0.1", 5353));
    CHECK(fd_count(pid) == idle + 1);  // the flow's socket toward the container
    // Gone one timeout (3 s) after the last datagram, at the next 250 ms tick.
    wait_until("the idle flow to expire", 8000, [&] { return fd_count(pid) == idle; });
    REQUIRE(lab.udp("host", "127.0.0.1", 5353));  // a new flow serves again
}

TEST_CASE("one UDP client talking to two published ports reaches each", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"5353:53/udp", "5354:54/udp", "8007:7/udp"});
    // One client socket, the same source port for every destination.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in from = loopback4(0);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int round = 0; round < 2; ++round)
        for (int port : {5353, 5354, 8007}) {
            INFO("port " << port << ", round " << round);
            sockaddr_in to = loopback4(port);
            REQUIRE(::sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 4);
            char buf[256];
            sockaddr_in got{};
            socklen_t len = sizeof got;
            ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&got), &len);
            REQUIRE(n > 0);
            CHECK(ntohs(got.sin_port) == port);  // the answer comes from the port asked
            const std::string reply(buf, static_cast<std::size_t>(n));
            // 53 and 54 answer "web <peer> ping"; 7 echoes.
            CHECK(reply == (port == 8007 ? std::string("ping") : "web 198.51.100.1 ping"));
        }
    ::close(fd);
}

TEST_CASE("up again with a live proxy and UDP ports replaces it", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"5353:53/udp", "8080:80"});
    const int first = *lab.proxy_pid("web");
    lab.up(web, {"5353:53/udp", "8080:80"});  // the old proxy's own sockets do not count as in use
    const int second = *lab.proxy_pid("web");
    CHECK(second != first);
    CHECK_FALSE(alive(first));
    REQUIRE(lab.udp("host", "127.0.0.1", 5353));
    REQUIRE(lab.tcp("host", "127.0.0.1", 8080));
}

TEST_CASE("a client reset mid-transfer closes both sides", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8007:7"});
    const int pid = *lab.proxy_pid("web");
    const int idle = fd_count(pid);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = loopback4(8007);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    const std::string chunk(1 << 20, 'x');
    REQUIRE(::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0);  // the echo piles up unread
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);  // a reset
    // 4: one pooled pipe pair.
    wait_until("the proxy to close the reset relay", 3000,
               [&] { return fd_count(pid) <= idle + 4; });
    REQUIRE(lab.echo_tcp("host", "127.0.0.1", 8007, "still serving"));
}

TEST_CASE("a proxy takes no port beyond its own publication", "[proxy]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80", "127.0.0.1:8081:81", "[::1]:8082:81"});
    // Every other TCP port is free for b, and its proxy serves on them.
    lab.up(b, {"1-8079:1-8079", "8083-65535:8083-65535"}, {"--no-reserve"});
    CHECK(lab.answering("host", "127.0.0.1", 8081) == "a");
    CHECK(lab.answering("host", "127.0.0.1", 80) == "b");
    CHECK(lab.answering("host", "::1", 8082) == "a");
}

TEST_CASE("a publication on loopback alone is served by listeners on its own ports", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"127.0.0.1:8081:81", "[::1]:8082:80"}, {"--no-reserve"});
    CHECK(lab.answering("host", "127.0.0.1", 8081) == "web");
    CHECK(lab.answering("host", "::1", 8082) == "web");
    // Nothing else of this host listens: the proxy took no port of its own.
    CHECK(tcp_ports("0A") == std::set<int>{8081, 8082});
}

TEST_CASE("a port the proxy listened on is held again at once, and held fast", "[proxy]") {
    Lab lab(0);
    lab.loopback = "proxy";  // what goes through the proxy
    auto a = lab.container("a");
    lab.up(a, {"8080:80"});  // the proxy listens on 8080
    // The container closes first, so the proxy closes its side to the client
    // first: those connections stay in TIME_WAIT on 127.0.0.1:8080.
    for (int i = 0; i < 3; ++i)
        REQUIRE(lab.tcp("host", "127.0.0.1", 8080));
    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    REQUIRE(tcp_ports("06").count(8080) == 1);
    auto b = lab.container("b");
    lab.up(b, {"7000:80", "8080:81"});  // 8080 is held now, not listened on
    CHECK(try_bind(AF_INET, SOCK_STREAM, 8080) == EADDRINUSE);
    CHECK(try_listen(AF_INET, 8080) == EADDRINUSE);
    CHECK(try_listen(AF_INET6, 8080) == EADDRINUSE);
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "b");
}

TEST_CASE("the proxy's listeners never take a port that is to be held", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    // Four local ports: the random host ports and the listeners' kernel-chosen
    // ports (no TCP port is published on every address, 127.0.0.1 or ::1)
    // come from the same few. The IPv6 listener on [::] would clash with the
    // port held on 2001:db8::1 if it were bound first; on IPv4, 127.0.0.1 and
    // 127.0.0.2 never clash.
    sh("echo '40000 40003' > /proc/sys/net/ipv4/ip_local_port_range");
    for (int round = 0; round < 3; ++round) {
        auto r = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "127.0.0.2::80",
                              "-p", std::string("[") + kHostIp6 + "]::81"});
        INFO(r.err);
        REQUIRE(r.status == 0);
        REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    }
}

TEST_CASE("broadcast datagrams to a published UDP port are not relayed", "[proxy]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8007:7/udp"});
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto send_to = [&](const char* ip) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(8007);
        ::inet_pton(AF_INET, ip, &to.sin_addr);
        REQUIRE(::sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 4);
        char buf[64];
        return ::recv(fd, buf, sizeof buf, 0) > 0;
    };
    CHECK(send_to("127.0.0.1"));  // unicast, through the proxy
    // A relayed datagram makes a flow, and a flow is a socket of the proxy.
    const int pid = *lab.proxy_pid("web");
    const int before = fd_count(pid);
    CHECK_FALSE(send_to("192.0.2.255"));  // the broadcast of the host's link
    CHECK(fd_count(pid) == before);
    ::close(fd);
}
