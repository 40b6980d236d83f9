#include "portpub/nat_elements.hpp"

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
    CHECK(std::vector<int>(e.data.begin(), e.data.end()) ==
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
