// Which flows count as sent to a published port: by protocol, port range and the mapping's
// address (none, 0.0.0.0 or ::, or one address), never a flow the host sent to another
// machine; and how a flow is written.
#include "portpub/conntrack_match.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace portpub;

namespace {

FlowTuple udp_to(const char* dst, int port) {
    FlowTuple f;
    f.proto = Proto::udp;
    const bool v4 = IpAddress::parse(dst)->is_v4();
    f.src = *IpAddress::parse(v4 ? "192.0.2.2" : "2001:db8::2");
    f.dst = *IpAddress::parse(dst);
    f.src_port = 40000;
    f.dst_port = static_cast<std::uint16_t>(port);
    return f;
}

std::vector<Mapping> mappings(std::vector<std::string> specs) {
    return test::publication("web", "10.77.0.2", std::move(specs)).mappings;
}

// The host of these tests: 192.0.2.1 and .3, 2001:db8::1 and ::3, loopback.
bool host(const IpAddress& a) {
    if (a.is_loopback()) return true;
    for (const char* mine : {"192.0.2.1", "192.0.2.3", "2001:db8::1", "2001:db8::3"})
        if (a == *IpAddress::parse(mine)) return true;
    return false;
}

}  // namespace

TEST_CASE("a mapping without an address takes flows to every address", "[conntrack]") {
    const auto ms = mappings({"5353:53/udp"});
    CHECK(sent_to_published(udp_to("192.0.2.1", 5353), ms, host));
    CHECK(sent_to_published(udp_to("127.0.0.1", 5353), ms, host));
    CHECK(sent_to_published(udp_to("2001:db8::1", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 5354), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 5352), ms, host));
}

TEST_CASE("only the mapping's protocol counts", "[conntrack]") {
    auto tcp = udp_to("192.0.2.1", 8080);
    tcp.proto = Proto::tcp;
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 8080), mappings({"8080:80"}), host));
    CHECK(sent_to_published(tcp, mappings({"8080:80"}), host));
    CHECK_FALSE(sent_to_published(tcp, mappings({"8080:80/udp"}), host));
}

TEST_CASE("a mapping bound to an address takes flows to that address only", "[conntrack]") {
    const auto ms = mappings({"192.0.2.1:5353:53/udp", "[2001:db8::1]:6000:53/udp"});
    CHECK(sent_to_published(udp_to("192.0.2.1", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.3", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("2001:db8::1", 5353), ms, host));
    CHECK(sent_to_published(udp_to("2001:db8::1", 6000), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("2001:db8::3", 6000), ms, host));
    // An IPv4 destination written as an IPv4-mapped IPv6 address is the same one.
    CHECK(sent_to_published(udp_to("::ffff:192.0.2.1", 5353), ms, host));
}

TEST_CASE("0.0.0.0 and :: take every address of their family", "[conntrack]") {
    const auto ms = mappings({"0.0.0.0:5353:53/udp", "[::]:6000:53/udp"});
    CHECK(sent_to_published(udp_to("192.0.2.3", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("2001:db8::1", 5353), ms, host));
    CHECK(sent_to_published(udp_to("2001:db8::1", 6000), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 6000), ms, host));
}

TEST_CASE("a range is compared as an interval, to its last port", "[conntrack]") {
    const auto all = mappings({"1-65535:1-65535/udp"});
    REQUIRE(all.size() == 1);
    CHECK(sent_to_published(udp_to("192.0.2.1", 1), all, host));
    CHECK(sent_to_published(udp_to("192.0.2.1", 65535), all, host));
    const auto some = mappings({"8000-8010:80-90/udp"});
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 7999), some, host));
    CHECK(sent_to_published(udp_to("192.0.2.1", 8000), some, host));
    CHECK(sent_to_published(udp_to("192.0.2.1", 8010), some, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 8011), some, host));
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.1", 8005), {}, host));
}

TEST_CASE("a flow the host sent to another machine's port of that number is left", "[conntrack]") {
    // The host's own query to 192.0.2.2:5353 is not a client of the published 5353.
    const auto ms = mappings({"5353:53/udp", "0.0.0.0:6000:53/udp"});
    CHECK_FALSE(sent_to_published(udp_to("192.0.2.2", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("2001:db8::2", 5353), ms, host));
    CHECK_FALSE(sent_to_published(udp_to("198.51.100.7", 6000), ms, host));
    CHECK(sent_to_published(udp_to("192.0.2.3", 6000), ms, host));
}

TEST_CASE("flows are described the way a user reads addresses", "[conntrack]") {
    CHECK(describe(udp_to("192.0.2.1", 5353)) == "udp 192.0.2.2:40000 -> 192.0.2.1:5353");
    CHECK(describe(udp_to("2001:db8::1", 5353)) == "udp [2001:db8::2]:40000 -> [2001:db8::1]:5353");
}
