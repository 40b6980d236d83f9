// A conflict needs the same protocol, a shared port and a shared address; `docker port` and
// `docker ps` text; only runs that continue each other are joined.
#include "portpub/mapping.hpp"

#include <catch2/catch.hpp>

using namespace portpub;

namespace {
Mapping m(const char* ip, Proto p, int host, int container, int count = 1) {
    Mapping out;
    if (*ip) out.host_ip = IpAddress::parse(ip);
    out.proto = p;
    out.host_port = static_cast<std::uint16_t>(host);
    out.container_port = static_cast<std::uint16_t>(container);
    out.count = static_cast<std::uint32_t>(count);
    return out;
}
}  // namespace

TEST_CASE("conflicts need the same protocol, a shared port and a shared address", "[mapping]") {
    CHECK(conflicts(m("", Proto::tcp, 8080, 80), m("", Proto::tcp, 8080, 81)));
    CHECK_FALSE(conflicts(m("", Proto::tcp, 8080, 80), m("", Proto::udp, 8080, 80)));
    CHECK(conflicts(m("", Proto::tcp, 8000, 80, 11), m("", Proto::tcp, 8010, 80)));
    CHECK_FALSE(conflicts(m("", Proto::tcp, 8000, 80, 10), m("", Proto::tcp, 8010, 80)));
    CHECK(conflicts(m("192.0.2.1", Proto::tcp, 8080, 80), m("", Proto::tcp, 8080, 80)));
    CHECK(conflicts(m("192.0.2.1", Proto::tcp, 8080, 80), m("0.0.0.0", Proto::tcp, 8080, 80)));
    CHECK_FALSE(
        conflicts(m("192.0.2.1", Proto::tcp, 8080, 80), m("192.0.2.3", Proto::tcp, 8080, 80)));
    CHECK_FALSE(conflicts(m("::1", Proto::tcp, 8080, 80), m("0.0.0.0", Proto::tcp, 8080, 80)));
}

TEST_CASE("docker port lines: one per port", "[mapping]") {
    std::vector<Mapping> ms{m("", Proto::tcp, 8080, 80), m("192.0.2.1", Proto::udp, 5353, 53),
                            m("", Proto::tcp, 8000, 90, 2)};
    CHECK(docker_port_lines(ms) ==
          "80/tcp -> 0.0.0.0:8080\n53/udp -> 192.0.2.1:5353\n90/tcp -> 0.0.0.0:8000\n"
          "91/tcp -> 0.0.0.0:8001\n");
}

TEST_CASE("docker ps PORTS column: runs become ranges", "[mapping]") {
    std::vector<Mapping> ms{m("", Proto::tcp, 8080, 80), m("", Proto::udp, 5353, 53)};
    CHECK(docker_ps_ports(ms) == "0.0.0.0:8080->80/tcp, 0.0.0.0:5353->53/udp");
    std::vector<Mapping> run{m("", Proto::tcp, 8000, 80), m("", Proto::tcp, 8001, 81),
                             m("", Proto::tcp, 8002, 82), m("[::1]", Proto::tcp, 9000, 90)};
    run[3].host_ip = IpAddress::parse("::1");
    CHECK(docker_ps_ports(run) == "0.0.0.0:8000-8002->80-82/tcp, [::1]:9000->90/tcp");
    CHECK(docker_ps_ports({}) == "");
}

TEST_CASE("merge_runs joins only continuing runs", "[mapping]") {
    auto out = merge_runs({m("", Proto::tcp, 1, 1), m("", Proto::tcp, 2, 2),
                           m("", Proto::tcp, 3, 9), m("", Proto::udp, 4, 10)});
    REQUIRE(out.size() == 3);
    CHECK(out[0].count == 2);
    CHECK(port_count(out) == 4);
}
