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

TEST_CASE("a port held by a listening socket is in use", "[host_ports]") {
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
    CHECK(port_in_use(IpAddress::parse("127.0.0.1"), Proto::tcp, port));
    CHECK(port_in_use(std::nullopt, Proto::tcp, port));
    ::close(fd);
    CHECK_FALSE(port_in_use(IpAddress::parse("127.0.0.1"), Proto::tcp, port));
}
