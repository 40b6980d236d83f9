// The service map's entries of a publication: which mappings and addresses
// the kernel rewrites, one entry a host port, and what ls says serves loopback.
#include "portpub/loopback_rewrite.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

using namespace portpub;

namespace {

std::vector<std::string> described(const std::vector<RewriteEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries)
        out.push_back(describe(e));
    return out;
}

}  // namespace

TEST_CASE("loopback mappings get an entry a port and family, bound ones for their address only",
          "[loopback_rewrite]") {
    auto web = test::publication(
        "web", "10.77.0.2",
        {"8080:80", "127.0.0.2:8081:81", "0.0.0.0:8082:82/udp", "192.0.2.1:8083:83",
         "[::1]:8084:84", "[2001:db8::1]:8085:85", "8086-8087:86-87", "9:9/sctp"});
    const auto entries = rewrite_entries(web);
    CHECK(described(entries) == std::vector<std::string>{
                                    "tcp 127.0.0.0/8:8080 -> 10.77.0.2:80",
                                    "tcp 127.0.0.0/8:8086 -> 10.77.0.2:86",
                                    "tcp 127.0.0.0/8:8087 -> 10.77.0.2:87",
                                    "tcp 127.0.0.2:8081 -> 10.77.0.2:81",
                                    "udp 127.0.0.0/8:8082 -> 10.77.0.2:82",
                                    "tcp [::1]:8080 -> 10.77.0.2:80",
                                    "tcp [::1]:8084 -> 10.77.0.2:84",
                                    "tcp [::1]:8086 -> 10.77.0.2:86",
                                    "tcp [::1]:8087 -> 10.77.0.2:87",
                                });
    // A mapping on another host address, and SCTP, are none of the kernel's
    // rewriting: DNAT serves the one, nothing rewrites the other.
    for (const auto& e : entries)
        CHECK(e.port != 8083);
}

TEST_CASE("a container with IPv6 is reached on its IPv6 address from ::1", "[loopback_rewrite]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    test::add_ipv6(web);
    const auto entries = rewrite_entries(web);
    REQUIRE(entries.size() == 2);
    CHECK(describe(entries[1]) == "tcp [::1]:8080 -> [fd00:1::2]:80");
    CHECK(entries[0].target6 == web.address6);  // the same value; the family key tells which
}

TEST_CASE("ls says kernel, proxy or none serves loopback", "[loopback_rewrite]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    CHECK(loopback_service(web) == "none");  // no proxy, not rewritten
    web.proxy = ProxyInfo{};
    CHECK(loopback_service(web) == "proxy");
    web.rewrite = true;
    CHECK(loopback_service(web) == "kernel");
    auto outside = test::publication("db", "10.77.0.3", {"192.0.2.1:9090:80"});
    outside.rewrite = true;
    CHECK(loopback_service(outside) == "none");  // nothing is published on loopback
}

TEST_CASE("the record keeps loopback rewriting, and records before it read as the proxy's",
          "[loopback_rewrite]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    web.rewrite = true;
    auto record = to_record(web);
    CHECK(record.at("loopback") == "kernel");
    CHECK(from_record(record, "web.json").rewrite);
    record.erase("loopback");
    CHECK_FALSE(from_record(record, "web.json").rewrite);
    record["loopback"] = "bpf";
    CHECK_THROWS_WITH(from_record(record, "web.json"), Catch::Contains("unknown loopback \"bpf\""));
}
