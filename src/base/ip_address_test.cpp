// Addresses of both families parse and print, and anything but a literal is refused; a prefix
// knows its network, its last address, what it contains and what it overlaps.
#include "portpub/ip_address.hpp"

#include <catch2/catch.hpp>

using namespace portpub;

TEST_CASE("addresses parse and print in both families", "[ip]") {
    auto a = IpAddress::parse("192.0.2.1");
    REQUIRE(a);
    CHECK(a->is_v4());
    CHECK(a->str() == "192.0.2.1");
    CHECK(a->v4_value() == 0xc0000201u);
    auto b = IpAddress::parse("2001:db8:0:0::1");
    REQUIRE(b);
    CHECK_FALSE(b->is_v4());
    CHECK(b->str() == "2001:db8::1");
    CHECK(b->url_str() == "[2001:db8::1]");
    CHECK_FALSE(IpAddress::parse("localhost"));
    CHECK_FALSE(IpAddress::parse("192.0.2"));
    CHECK_FALSE(IpAddress::parse("[::1]"));
    CHECK_FALSE(IpAddress::parse(""));
    CHECK(IpAddress::parse("127.1.2.3")->is_loopback());
    CHECK(IpAddress::parse("::1")->is_loopback());
    CHECK_FALSE(IpAddress::parse("::2")->is_loopback());
    CHECK(IpAddress::parse("0.0.0.0")->is_unspecified());
    CHECK(IpAddress::parse("::")->is_unspecified());
}

TEST_CASE("prefixes know their network, last address and overlaps", "[ip]") {
    auto c = Cidr::parse("10.77.0.0/16");
    REQUIRE(c);
    CHECK(c->is_network());
    CHECK(c->last().str() == "10.77.255.255");
    CHECK(c->contains(*IpAddress::parse("10.77.3.4")));
    CHECK_FALSE(c->contains(*IpAddress::parse("10.78.0.1")));
    CHECK(c->overlaps(*Cidr::parse("10.77.5.0/24")));
    CHECK(Cidr::parse("10.0.0.0/8")->overlaps(*c));
    CHECK_FALSE(c->overlaps(*Cidr::parse("10.78.0.0/16")));
    auto odd = Cidr::parse("198.51.100.77/26");
    REQUIRE(odd);
    CHECK_FALSE(odd->is_network());
    CHECK(odd->network().str() == "198.51.100.64");
    CHECK(odd->last().str() == "198.51.100.127");
    CHECK(Cidr::parse("2001:db8::/64")->contains(*IpAddress::parse("2001:db8::5")));
    CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
    CHECK_FALSE(Cidr::parse("10.0.0.0"));
    CHECK_FALSE(Cidr::parse("10.0.0.0/x"));
}
