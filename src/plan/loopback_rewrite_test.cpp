// The service map's entries of a publication: which mappings and addresses
// the kernel rewrites, one entry a range of host ports, how ranges are cut,
// joined and laid in the map's blocks, and what ls says serves loopback.
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

TEST_CASE("loopback mappings get an entry a range and family, bound ones for their address only",
          "[loopback_rewrite]") {
    auto web = test::publication(
        "web", "10.77.0.2",
        {"8080:80", "127.0.0.2:8081:81", "0.0.0.0:8082:82/udp", "192.0.2.1:8083:83",
         "[::1]:8084:84", "[2001:db8::1]:8085:85", "8086-8089:86-89", "8090:90", "9:9/sctp"});
    const auto entries = rewrite_entries(web);
    // 8086-8089 and 8090 continue one another: one entry.
    CHECK(described(entries) == std::vector<std::string>{
                                    "tcp 127.0.0.0/8:8080 -> 10.77.0.2:80",
                                    "tcp 127.0.0.0/8:8086-8090 -> 10.77.0.2:86-90",
                                    "tcp 127.0.0.2:8081 -> 10.77.0.2:81",
                                    "udp 127.0.0.0/8:8082 -> 10.77.0.2:82",
                                    "tcp [::1]:8080 -> 10.77.0.2:80",
                                    "tcp [::1]:8084 -> 10.77.0.2:84",
                                    "tcp [::1]:8086-8090 -> 10.77.0.2:86-90",
                                });
    // A mapping on another host address, and SCTP, are none of the kernel's
    // rewriting: DNAT serves the one, nothing rewrites the other.
    for (const auto& e : entries)
        CHECK((e.port != 8083 && e.port != 9));
}

TEST_CASE("65,535 ports are two entries and 16 blocks a family", "[loopback_rewrite]") {
    auto all = test::publication("all", "10.77.0.2", {"1-65535:1-65535"});
    const auto entries = rewrite_entries(all);
    CHECK(described(entries) == std::vector<std::string>{
                                    "tcp 127.0.0.0/8:1-65535 -> 10.77.0.2:1-65535",
                                    "tcp [::1]:1-65535 -> 10.77.0.2:1-65535",
                                });
    CHECK(port_blocks(1, 65535).size() == 16);
}

TEST_CASE("a range is laid in aligned blocks that cover it exactly", "[loopback_rewrite]") {
    CHECK(port_blocks(8080, 8080) == std::vector<PortBlock>{{8080, 0}});
    CHECK(port_blocks(8000, 8009) == std::vector<PortBlock>{{8000, 3}, {8008, 1}});
    CHECK(port_blocks(0, 65535) == std::vector<PortBlock>{{0, 16}});
    CHECK(port_blocks(65535, 65535) == std::vector<PortBlock>{{65535, 0}});
    // Every range of a sample: blocks aligned, in order, end to end, and few.
    for (std::uint32_t first : {1u, 2u, 3u, 1023u, 8000u, 32767u, 32768u, 65534u})
        for (std::uint32_t last : {first, first + 1, first + 100, first + 4097, 65535u}) {
            if (last > 65535) continue;
            const auto blocks =
                port_blocks(static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last));
            INFO(first << "-" << last);
            CHECK(blocks.size() <= 30);
            std::uint32_t next = first;
            for (const auto& b : blocks) {
                CHECK(b.first == next);
                CHECK(b.first % (1u << b.bits) == 0);
                next = b.first + (1u << b.bits);
            }
            CHECK(next == last + 1);
        }
}

TEST_CASE("ranges are cut by what covers them, and joined where they continue",
          "[loopback_rewrite]") {
    auto one = [](const std::string& spec, const char* address = "10.77.0.2") {
        auto e = rewrite_entries(test::publication("p", address, {spec}));
        REQUIRE_FALSE(e.empty());
        return e.front();  // the IPv4 one
    };
    const auto range = one("8000-8009:80-89");
    // The middle gone: two pieces, each still sent where it was.
    CHECK(described(uncovered({range}, {one("8003-8004:83-84")}, true)) ==
          std::vector<std::string>{"tcp 127.0.0.0/8:8000-8002 -> 10.77.0.2:80-82",
                                   "tcp 127.0.0.0/8:8005-8009 -> 10.77.0.2:85-89"});
    // Sent elsewhere covers by key, not by target.
    const auto elsewhere = one("8003-8004:93-94");
    CHECK(uncovered({range}, {elsewhere}, true).size() == 1);
    CHECK(uncovered({range}, {elsewhere}, false).size() == 2);
    CHECK(uncovered({range}, {one("8003:83", "10.77.0.3")}, true).size() == 1);
    // Another protocol or address is another key.
    CHECK(uncovered({range}, {one("8000-8009:80-89/udp")}, false) == std::vector{range});
    CHECK(uncovered({range}, {one("127.0.0.2:8000-8009:80-89")}, false) == std::vector{range});
    CHECK(uncovered({range}, {range}, true).empty());
    // Covered by one that starts well before it, past one that ends before it.
    CHECK(
        described(uncovered({range}, {one("7000-8003:70-1073"), one("7500-7600:50-150")}, false)) ==
        std::vector<std::string>{"tcp 127.0.0.0/8:8004-8009 -> 10.77.0.2:84-89"});

    // Written over: the new target wins for its ports, the rest stays.
    CHECK(described(overlay({range}, {elsewhere})) ==
          std::vector<std::string>{"tcp 127.0.0.0/8:8000-8002 -> 10.77.0.2:80-82",
                                   "tcp 127.0.0.0/8:8003-8004 -> 10.77.0.2:93-94",
                                   "tcp 127.0.0.0/8:8005-8009 -> 10.77.0.2:85-89"});
    // Pieces that continue one another are one run again; with a gap, or a
    // port shifted, they are not.
    CHECK(join_runs({one("8005-8009:85-89"), one("8000-8004:80-84")}) == std::vector{range});
    CHECK(join_runs({one("8000-8004:80-84"), one("8006-8009:86-89")}).size() == 2);
    CHECK(join_runs({one("8000-8004:80-84"), one("8005-8009:86-90")}).size() == 2);
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
