// The split between kernel DNAT and the proxy: who serves which address, redirect elements and
// their runs, the listeners' ports, the sockets held with and without reserve, the container
// port of a destination, and the mappings listed.
#include "portpub/proxy_plan.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "portpub/nat_elements.hpp"
#include "test_support.hpp"

using namespace portpub;

namespace {

IpAddress ip(const char* text) {
    return *IpAddress::parse(text);
}

Publication with_proxy(Publication p) {
    ProxyInfo info;
    info.listen4 = 40000;
    info.listen6 = 40001;
    info.ipv6 = true;
    p.proxy = info;
    return p;
}

}  // namespace

TEST_CASE("the kernel serves IPv4 host addresses, the proxy loopback and IPv6", "[proxy_plan]") {
    auto web =
        test::publication("web", "10.77.0.2",
                          {"8080:80", "0.0.0.0:8081:81", "192.0.2.1:8082:82", "127.0.0.1:8083:83",
                           "[::1]:8084:84", "[::]:8085:85", "9:9/sctp"});
    const auto& m = web.mappings;
    CHECK(kernel_serves(m[0]));
    CHECK(proxy_serves_loopback4(m[0]));
    CHECK(proxy_serves_v6(web, m[0]));
    CHECK(kernel_serves(m[1]));
    CHECK(proxy_serves_loopback4(m[1]));
    CHECK_FALSE(proxy_serves_v6(web, m[1]));  // 0.0.0.0 is IPv4 only, as in Docker
    CHECK(kernel_serves(m[2]));
    CHECK_FALSE(proxy_serves_loopback4(m[2]));
    CHECK_FALSE(proxy_serves_v6(web, m[2]));
    CHECK_FALSE(kernel_serves(m[3]));
    CHECK(proxy_serves_loopback4(m[3]));
    CHECK_FALSE(kernel_serves(m[4]));
    CHECK(proxy_serves_v6(web, m[4]));
    CHECK(proxy_serves_v6(web, m[5]));
    CHECK(kernel_serves(m[6]));
    CHECK_FALSE(proxy_serves_loopback4(m[6]));  // SCTP: kernel DNAT only
    CHECK_FALSE(proxy_serves_v6(web, m[6]));
    CHECK(needs_proxy(web));
    CHECK_FALSE(needs_proxy(test::publication("x", "10.77.0.3", {"192.0.2.1:80:80", "9:9/sctp"})));
}

TEST_CASE("redirect elements point TCP ports at the proxy's listeners", "[proxy_plan]") {
    auto web = with_proxy(test::publication(
        "web", "10.77.0.2", {"8080:80", "127.0.0.1:8083:83", "[::1]:8084:84", "53:53/udp"}));
    std::vector<std::string> seen;
    for (const auto& e : nat_elements(web))
        seen.push_back(std::string(map_name(e.map)) + " " + describe(e));
    CHECK(seen == std::vector<std::string>{
                      "pub4 tcp 0.0.0.0:8080 -> 10.77.0.2:80",
                      "pub4 udp 0.0.0.0:53 -> 10.77.0.2:53",  // UDP loopback: sockets on the port
                      "proxy4 tcp 0.0.0.0:8080 -> proxy port 40000",
                      "proxy4addr tcp 127.0.0.1:8083 -> proxy port 40000",
                      "proxy6 tcp [::]:8080 -> proxy port 40001",
                      "proxy6addr tcp [::1]:8084 -> proxy port 40001",
                  });
    auto v6 = nat_elements(web).back();
    CHECK(v6.key_len == 24);
    CHECK(nft_key(v6) == "::1 . tcp . 8084");
    // Without a proxy, only kernel DNAT.
    web.proxy.reset();
    CHECK(nat_elements(web).size() == 2);
}

TEST_CASE("redirects cover runs of ports: neighbours merge, gaps split, no IPv6 no proxy6",
          "[proxy_plan]") {
    auto web = with_proxy(test::publication(
        "web", "10.77.0.2",
        {"8011:91", "8000-8010:80-90", "8013:93", "127.0.0.1:9000-9001:90-91", "9002:92/udp"}));
    std::vector<std::string> proxy4;
    for (const auto& e : nat_elements(web))
        if (is_interval(e.map)) proxy4.push_back(std::string(map_name(e.map)) + " " + nft_key(e));
    CHECK(proxy4 == std::vector<std::string>{
                        "proxy4 tcp . 8000-8011",
                        "proxy4 tcp . 8013",
                        "proxy4addr 127.0.0.1 . tcp . 9000-9001",
                        "proxy6 tcp . 8000-8011",
                        "proxy6 tcp . 8013",
                    });
    const auto run = nat_elements(web).at(14);  // 14 DNAT elements come first
    REQUIRE(run.map == NatMap::proxy4);
    CHECK(std::vector<int>(run.key_end.begin(), run.key_end.begin() + run.key_len) ==
          std::vector<int>{6, 0, 0, 0, 0x1f, 0x4b, 0, 0});  // tcp . 8011
    // Every host port at once is a single element per map.
    auto all = with_proxy(test::publication("big", "10.77.0.3", {"1-65535:1-65535"}));
    CHECK(nat_elements(all).size() == 65535 + 2);
    // A host without IPv6 gets no IPv6 redirects.
    web.proxy->listen6 = 0;
    for (const auto& e : nat_elements(web))
        CHECK(e.map != NatMap::proxy6);
}

TEST_CASE("the proxy listens on a port the publication holds anyway", "[proxy_plan]") {
    auto listeners = [](std::vector<std::string> specs) {
        auto l = proxy_listeners(test::publication("web", "10.77.0.2", specs));
        auto text = [](const std::optional<ProxySocket>& s) {
            return s ? s->address.url_str() + ":" + std::to_string(s->port) : std::string("none");
        };
        return text(l.v4) + " " + text(l.v6);
    };
    // The first TCP port on every address, where the proxy is the holder.
    CHECK(listeners({"53:53/udp", "127.0.0.1:8083:83", "8080:80", "8081:81"}) ==
          "0.0.0.0:8080 [::]:8080");
    CHECK(listeners({"0.0.0.0:8090:90", "[::]:8091:91"}) == "0.0.0.0:8090 [::]:8091");
    // Loopback only: the first loopback port.
    CHECK(listeners({"127.0.0.1:8083:83", "[::1]:8084:84", "127.0.0.1:8085:85"}) ==
          "127.0.0.1:8083 [::1]:8084");
    // IPv6 from other hosts arrives on the interface's address: not ::1.
    CHECK(listeners({"[::1]:8084:84", "[2001:db8::1]:8086:86"}) == "none [::]:0");
    // No port to borrow: the kernel picks one.
    CHECK(listeners({"127.0.0.2:8085:85"}) == "127.0.0.1:0 none");
    // Nothing for the proxy to accept: UDP, SCTP, kernel-only addresses.
    CHECK(listeners({"53:53/udp", "9:9/sctp", "192.0.2.1:8082:82"}) == "none none");
    CHECK(listeners({"0.0.0.0:8090:90"}) == "0.0.0.0:8090 none");
}

TEST_CASE("when the runtime holds the ports, the proxy binds none of them", "[proxy_plan]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80", "53:53/udp", "127.0.0.1:8083:83"});
    p.proxy = ProxyInfo{};
    p.proxy->runtime_holds_ports = true;
    auto l = proxy_listeners(p);
    REQUIRE(l.v4);
    CHECK(l.v4->port == 0);  // the kernel picks
    REQUIRE(l.v6);
    CHECK(l.v6->port == 0);
    CHECK(proxy_sockets(p, true).empty());
    p.proxy->runtime_holds_ports = false;
    CHECK_FALSE(proxy_sockets(p, true).empty());
}

TEST_CASE("with reserve every published port is held, without, only UDP is served",
          "[proxy_plan]") {
    auto web = test::publication(
        "web", "10.77.0.2",
        {"8080:80", "192.0.2.1:8082:82", "53:53/udp", "127.0.0.1:54:54/udp", "9:9/sctp"});
    auto held = proxy_sockets(web, true);
    // TCP 8080 is held by the proxy's listeners.
    CHECK(held == std::vector<ProxySocket>{
                      {Proto::tcp, ip("192.0.2.1"), 8082, false},
                      {Proto::udp, ip("0.0.0.0"), 53, true},
                      {Proto::udp, ip("::"), 53, true},
                      {Proto::udp, ip("127.0.0.1"), 54, true},
                  });
    auto served = proxy_sockets(web, false);
    CHECK(served == std::vector<ProxySocket>{
                        {Proto::udp, ip("127.0.0.1"), 53, true},
                        {Proto::udp, ip("::"), 53, true},
                        {Proto::udp, ip("127.0.0.1"), 54, true},
                    });
    // 10,000 TCP ports without reserve: no socket at all beyond the listeners.
    CHECK(proxy_sockets(test::publication("big", "10.77.0.3", {"10000-19999:10000-19999"}), false)
              .empty());
}

TEST_CASE("the proxy finds the container port for an original destination", "[proxy_plan]") {
    auto web =
        test::publication("web", "10.77.0.2",
                          {"8000-8010:80-90", "127.0.0.1:9000:99", "[::1]:9001:98", "53:5353/udp"});
    CHECK(proxy_target(web, Proto::tcp, ip("127.0.0.1"), 8005) == Endpoint{ip("10.77.0.2"), 85});
    CHECK(proxy_target(web, Proto::tcp, ip("::1"), 8010) == Endpoint{ip("10.77.0.2"), 90});
    CHECK(proxy_target(web, Proto::tcp, ip("127.0.0.1"), 9000) == Endpoint{ip("10.77.0.2"), 99});
    CHECK_FALSE(proxy_target(web, Proto::tcp, ip("127.0.0.2"), 9000));
    CHECK(proxy_target(web, Proto::tcp, ip("::1"), 9001) == Endpoint{ip("10.77.0.2"), 98});
    CHECK(proxy_target(web, Proto::tcp, ip("::ffff:127.0.0.1"), 9000) ==
          Endpoint{ip("10.77.0.2"), 99});
    CHECK(proxy_target(web, Proto::udp, ip("127.0.0.1"), 53) == Endpoint{ip("10.77.0.2"), 5353});
    CHECK_FALSE(proxy_target(web, Proto::udp, ip("127.0.0.1"), 8005));
    CHECK_FALSE(proxy_target(web, Proto::tcp, ip("127.0.0.1"), 7999));
}

TEST_CASE("listed mappings show [::] next to 0.0.0.0 when the proxy serves IPv6", "[proxy_plan]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80", "9:9/sctp"});
    CHECK(docker_port_lines(listed_mappings(web)) ==
          "80/tcp -> 0.0.0.0:8080\n9/sctp -> 0.0.0.0:9\n");
    web = with_proxy(web);
    CHECK(docker_port_lines(listed_mappings(web)) ==
          "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n9/sctp -> 0.0.0.0:9\n");
    CHECK(docker_ps_ports(listed_mappings(web)) ==
          "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 0.0.0.0:9->9/sctp");
}

TEST_CASE("for a container with IPv6 the proxy serves ::1 only, the kernel the rest",
          "[proxy_plan]") {
    auto web = test::publication(
        "web", "10.77.0.2",
        {"8080:80", "[2001:db8::1]:8081:81", "[::1]:8082:82", "192.0.2.1:8083:83", "5353:53/udp"});
    test::add_ipv6(web);
    const auto& m = web.mappings;
    CHECK(kernel_serves6(web, m[0]));
    CHECK(proxy_serves_v6(web, m[0]));  // for ::1
    CHECK(kernel_serves6(web, m[1]));
    CHECK_FALSE(proxy_serves_v6(web, m[1]));
    CHECK_FALSE(kernel_serves6(web, m[2]));
    CHECK(proxy_serves_v6(web, m[2]));
    CHECK_FALSE(kernel_serves6(web, m[3]));
    // Without --reserve the proxy reads UDP on ::1 only where it must.
    auto sockets = proxy_sockets(with_proxy(web), false);
    CHECK(std::count_if(sockets.begin(), sockets.end(), [](const ProxySocket& s) {
              return s.proto == Proto::udp && !s.address.is_v4() && s.serves;
          }) == 1);
    // Listed as Docker lists a dual-stack container's ports, even with no proxy.
    std::vector<std::string> listed;
    for (const auto& l : listed_mappings(web))
        listed.push_back(host_ip_text(l) + ":" + std::to_string(l.host_port));
    CHECK(std::count(listed.begin(), listed.end(), "[::]:8080") == 1);
    auto v4only = test::publication("web", "10.77.0.2", {"8080:80"});
    CHECK(proxy_serves_v6(v4only, v4only.mappings[0]));
    CHECK_FALSE(kernel_serves6(v4only, v4only.mappings[0]));
}
