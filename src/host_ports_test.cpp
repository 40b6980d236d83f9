#include "portpub/host_ports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using namespace portpub;

TEST_CASE("ip_local_reserved_ports is read as the kernel writes it", "[host_ports]") {
    auto r = parse_reserved_ports("8080,9000-9002,65535");
    CHECK(r(8080));
    CHECK(r(9000));
    CHECK(r(9002));
    CHECK_FALSE(r(9003));
    CHECK(r(65535));
    CHECK_FALSE(r(1));
    auto none = parse_reserved_ports("");
    CHECK_FALSE(none(8080));
}

TEST_CASE("/proc/net is read as the kernel writes it", "[host_ports]") {
    const char* tcp =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
        "0 4242 1 0 100 0 0 10 0\n"
        "   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        "
        "0 4243 1 0 20 4 30 10 -1\n"
        "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
        "0 4244 1 0 100 0 0 10 0\n";
    auto listeners = parse_proc_net(tcp, Proto::tcp, false);
    REQUIRE(listeners.size() == 2);  // the established connection holds no port to publish
    CHECK(listeners[0].address.str() == "127.0.0.1");
    CHECK(listeners[0].port == 8080);
    CHECK(listeners[0].inode == 4242);
    CHECK(listeners[1].address.str() == "0.0.0.0");
    CHECK(listeners[1].port == 22);
    const char* udp6 =
        "  sl  local_address                         remote_address                        st "
        "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
        "  1: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 07 "
        "00000000:00000000 00:00000000 00000000     0        0 77 2 0 0\n";
    auto bound = parse_proc_net(udp6, Proto::udp, true);
    REQUIRE(bound.size() == 1);
    CHECK(bound[0].address.str() == "::1");
    CHECK(bound[0].port == 5353);
    CHECK(parse_proc_net("header only\n", Proto::tcp, false).empty());
    CHECK(parse_proc_net("header\n garbage line\n", Proto::tcp, false).empty());
}

TEST_CASE("a socket holds a port for the addresses it receives on", "[host_ports]") {
    HostSockets sockets({{Proto::tcp, *IpAddress::parse("0.0.0.0"), 22, 1},
                         {Proto::tcp, *IpAddress::parse("192.0.2.1"), 8080, 2},
                         {Proto::udp, *IpAddress::parse("::"), 53, 3},
                         {Proto::tcp, *IpAddress::parse("::ffff:192.0.2.7"), 9000, 4}});
    CHECK(sockets.holder(std::nullopt, Proto::tcp, 22));
    CHECK(sockets.holder(IpAddress::parse("192.0.2.3"), Proto::tcp, 22));
    CHECK(sockets.holder(std::nullopt, Proto::tcp, 8080));
    CHECK(sockets.holder(IpAddress::parse("192.0.2.1"), Proto::tcp, 8080));
    CHECK_FALSE(sockets.holder(IpAddress::parse("192.0.2.3"), Proto::tcp, 8080));
    CHECK_FALSE(sockets.holder(std::nullopt, Proto::udp, 22));
    CHECK(sockets.holder(IpAddress::parse("192.0.2.3"), Proto::udp, 53));  // :: takes IPv4 too
    CHECK(sockets.holder(IpAddress::parse("192.0.2.7"), Proto::tcp, 9000));
    CHECK_FALSE(sockets.holder(std::nullopt, Proto::sctp, 22));
    CHECK(sockets.holder(std::nullopt, Proto::tcp, 22)->inode == 1);
}

TEST_CASE("a listening socket of this process is found and its process named", "[host_ports]") {
    // Needs no privileges: a kernel-chosen loopback port.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    const auto port = ntohs(sa.sin_port);
    auto facts = read_host_port_facts();
    CHECK(facts.in_use(std::nullopt, Proto::tcp, port));
    CHECK(facts.in_use(IpAddress::parse("127.0.0.1"), Proto::tcp, port));
    CHECK_THAT(facts.holder(std::nullopt, Proto::tcp, port),
               Catch::Contains("(pid " + std::to_string(::getpid()) +
                               ") on 127.0.0.1:" + std::to_string(port)));
    CHECK(facts.is_local(*IpAddress::parse("127.0.0.1")));
    CHECK_FALSE(facts.is_local(*IpAddress::parse("203.0.113.9")));
    ::close(fd);
    CHECK_FALSE(read_host_port_facts().in_use(std::nullopt, Proto::tcp, port));
}
