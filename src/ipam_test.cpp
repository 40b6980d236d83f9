#include "portpub/ipam.hpp"

#include <catch2/catch.hpp>

#include "portpub/error.hpp"

using namespace portpub;

TEST_CASE("addresses are given in order, skipping gateway and used ones", "[ipam]") {
    auto subnet = *Cidr::parse("198.51.100.0/24");
    auto gw = default_gateway(subnet);
    CHECK(gw.str() == "198.51.100.1");
    CHECK(allocate_address(subnet, gw, {}).str() == "198.51.100.2");
    std::set<IpAddress> used{*IpAddress::parse("198.51.100.2"), *IpAddress::parse("198.51.100.4")};
    CHECK(allocate_address(subnet, gw, used).str() == "198.51.100.3");
    used.insert(*IpAddress::parse("198.51.100.3"));
    CHECK(allocate_address(subnet, gw, used).str() == "198.51.100.5");
}

TEST_CASE("a full subnet is an error that says what to do", "[ipam]") {
    auto subnet =
        *Cidr::parse("198.51.100.0/30");  // .1 gateway, .2 the only container, .3 broadcast
    auto gw = default_gateway(subnet);
    auto only = allocate_address(subnet, gw, {});
    CHECK(only.str() == "198.51.100.2");
    try {
        allocate_address(subnet, gw, {only});
        FAIL("allocated from a full subnet");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("subnet 198.51.100.0/30 has no free address left"));
        CHECK_THAT(e.what(), Catch::Contains("--subnet"));
    }
}
