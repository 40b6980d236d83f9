// Reserved ports and sock_diag messages read as the kernel writes them, a socket holding a port
// only for the addresses it receives on, and a listener of this process found and named.
#include "portpub/host_ports.hpp"

#include <netinet/in.h>

#include <linux/inet_diag.h>
#include <netinet/tcp.h>
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

TEST_CASE("a sock_diag message is read as the kernel writes it", "[host_ports]") {
    inet_diag_msg v4{};
    v4.idiag_family = AF_INET;
    v4.id.idiag_sport = htons(8080);
    v4.id.idiag_src[0] = htonl(0xc0000201);  // 192.0.2.1
    v4.idiag_inode = 4242;
    auto s = decode_diag_message(&v4, Proto::tcp);
    CHECK(s.proto == Proto::tcp);
    CHECK(s.address.str() == "192.0.2.1");
    CHECK(s.port == 8080);
    CHECK(s.inode == 4242);
    CHECK_FALSE(s.time_wait);
    v4.idiag_state = TCP_TIME_WAIT;
    CHECK(decode_diag_message(&v4, Proto::tcp).time_wait);
    inet_diag_msg v6{};
    v6.idiag_family = AF_INET6;
    v6.id.idiag_sport = htons(5353);
    v6.id.idiag_src[3] = htonl(1);  // ::1
    auto u = decode_diag_message(&v6, Proto::udp);
    CHECK(u.address.str() == "::1");
    CHECK(u.port == 5353);
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
