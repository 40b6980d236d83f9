// Element bytes: keys and data padded to 32-bit fields, wildcard and bound maps, 0.0.0.0 in the
// wildcard map, a run one element a port, and a dual-stack container's ports split between
// kernel DNAT and the proxy.
#include "portpub/nat_elements.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace portpub;

TEST_CASE("wildcard elements: proto . port -> addr . port, padded to 32 bits", "[nft]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    auto es = nat_elements(p);
    REQUIRE(es.size() == 1);
    const auto& e = es[0];
    CHECK(e.map == NatMap::wildcard4);
    CHECK(std::string(map_name(e.map)) == "pub4");
    REQUIRE(e.key_len == 8);
    CHECK(std::vector<int>(e.key.begin(), e.key.begin() + 8) ==
          std::vector<int>{6, 0, 0, 0, 0x1f, 0x90, 0, 0});
    CHECK(std::vector<int>(e.data.begin(), e.data.begin() + e.data_len) ==
          std::vector<int>{10, 77, 0, 2, 0, 80, 0, 0});
    CHECK(describe(e) == "tcp 0.0.0.0:8080 -> 10.77.0.2:80");
}

TEST_CASE("bound elements: addr . proto . port", "[nft]") {
    auto p = test::publication("web", "10.77.0.2", {"192.0.2.1:5353:53/udp"});
    const auto e = nat_elements(p).at(0);
    CHECK(e.map == NatMap::bound4);
    REQUIRE(e.key_len == 12);
    CHECK(std::vector<int>(e.key.begin(), e.key.begin() + e.key_len) ==
          std::vector<int>{192, 0, 2, 1, 17, 0, 0, 0, 0x14, 0xe9, 0, 0});
    CHECK(describe(e) == "udp 192.0.2.1:5353 -> 10.77.0.2:53");
}

TEST_CASE("0.0.0.0 goes to the wildcard map, runs expand", "[nft]") {
    auto p = test::publication("web", "10.77.0.2", {"0.0.0.0:8000-8002:90-92/sctp"});
    auto es = nat_elements(p);
    REQUIRE(es.size() == 3);
    CHECK(es[2].map == NatMap::wildcard4);
    CHECK(describe(es[2]) == "sctp 0.0.0.0:8002 -> 10.77.0.2:92");
    auto all = test::publication("big", "10.77.0.3", {"1-65535:1-65535"});
    CHECK(nat_elements(all).size() == 65535);
}

TEST_CASE("a container with IPv6: kernel DNAT for IPv6 host addresses, the proxy for ::1",
          "[nft]") {
    auto p = test::publication(
        "web", "10.77.0.2",
        {"8080:80", "[2001:db8::1]:8081:81", "[::1]:8082:82", "192.0.2.1:8083:83", "5353:53/udp"});
    test::add_ipv6(p);
    ProxyInfo proxy;
    proxy.listen4 = 40000;
    proxy.listen6 = 40001;
    proxy.ipv6 = true;
    p.proxy = proxy;
    std::vector<std::string> seen;
    for (const auto& e : nat_elements(p))
        seen.push_back(std::string(map_name(e.map)) + " " + describe(e));
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{
                      "proxy4 tcp 0.0.0.0:8080 -> proxy port 40000",
                      "proxy6 tcp [::]:8080 -> proxy port 40001",
                      "proxy6addr tcp [::1]:8082 -> proxy port 40001",
                      "pub4 tcp 0.0.0.0:8080 -> 10.77.0.2:80",
                      "pub4 udp 0.0.0.0:5353 -> 10.77.0.2:53",
                      "pub4addr tcp 192.0.2.1:8083 -> 10.77.0.2:83",
                      "pub6 tcp [::]:8080 -> [fd00:1::2]:80",
                      "pub6 udp [::]:5353 -> [fd00:1::2]:53",
                      "pub6addr tcp [2001:db8::1]:8081 -> [fd00:1::2]:81",
                  });
    // pub6addr: address . proto . port -> address . port, each field padded to 32 bits.
    const auto bound = nat_elements(p).at(2);
    REQUIRE(bound.map == NatMap::bound6);
    CHECK(bound.key_len == 24);
    CHECK(bound.data_len == 20);
    CHECK(std::vector<int>(bound.data.begin() + 16, bound.data.begin() + 20) ==
          std::vector<int>{0, 81, 0, 0});
}
