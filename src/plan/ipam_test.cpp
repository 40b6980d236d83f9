// Address allocation: addresses in order past the gateway and those in use, a full subnet
// refused with advice, IPv6 alike, and a bridge's default IPv6 /64 fixed by its name.
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

TEST_CASE("IPv6 addresses are given in order after the gateway", "[ipam]") {
    auto subnet = *Cidr::parse("2001:db8:1::/64");
    auto gw = default_gateway(subnet);
    CHECK(gw.str() == "2001:db8:1::1");
    CHECK(allocate_address(subnet, gw, {}).str() == "2001:db8:1::2");
    std::set<IpAddress> used{*IpAddress::parse("2001:db8:1::2"),
                             *IpAddress::parse("2001:db8:1::3")};
    CHECK(allocate_address(subnet, gw, used).str() == "2001:db8:1::4");
    // A /126 holds the network address, the gateway and two containers.
    auto small = *Cidr::parse("2001:db8:2::/126");
    std::set<IpAddress> two{*IpAddress::parse("2001:db8:2::2"), *IpAddress::parse("2001:db8:2::3")};
    CHECK_THROWS_WITH(allocate_address(small, default_gateway(small), two),
                      Catch::Contains("has no free address left") && Catch::Contains("--subnet6"));
    // Carries cross bytes.
    CHECK(IpAddress::parse("2001:db8::ff")->plus(1).str() == "2001:db8::100");
    CHECK(IpAddress::parse("10.0.0.255")->plus(1).str() == "10.0.1.0");
}

TEST_CASE("the default IPv6 subnet is a unique local /64 fixed by the bridge's name", "[ipam]") {
    auto a = default_subnet6("portpub0");
    CHECK(a.prefix == 64);
    CHECK(a.is_network());
    CHECK(Cidr::parse("fd00::/8")->contains(a.address));
    CHECK(default_subnet6("portpub0") == a);
    CHECK(default_subnet6("portpub1") != a);
}
