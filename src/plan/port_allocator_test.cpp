// Port allocation: explicit ports one to one, a port held by another container or named twice
// refused, ranges and random ports given the first free port past reserved and used ones, and
// 65,535 ports or 10,000 specs allocated.
#include "portpub/port_allocator.hpp"

#include <catch2/catch.hpp>
#include <set>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

std::vector<PortSpec> specs(std::initializer_list<const char*> texts) {
    std::vector<PortSpec> out;
    for (auto t : texts)
        out.push_back(parse_port_spec(t));
    return out;
}

PublishedPort held(const char* owner, const char* spec) {
    auto s = parse_port_spec(spec);
    return {owner, Mapping{s.host_ip, s.proto, s.host->first, s.container.first, s.host->size()}};
}

std::string error_of(const std::vector<PortSpec>& s, const std::vector<PublishedPort>& taken,
                     const HostPortFacts& facts = {}) {
    try {
        allocate_ports(s, taken, facts);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("explicit ports map one to one", "[allocator]") {
    auto out = allocate_ports(specs({"8080:80", "5353:53/udp", "8000-8002:90-92"}), {}, {});
    REQUIRE(out.size() == 3);
    CHECK(out[0] == Mapping{std::nullopt, Proto::tcp, 8080, 80, 1});
    CHECK(out[1] == Mapping{std::nullopt, Proto::udp, 5353, 53, 1});
    CHECK(out[2] == Mapping{std::nullopt, Proto::tcp, 8000, 90, 3});
}

TEST_CASE("a port held by another container is refused, naming it", "[allocator]") {
    auto msg = error_of(specs({"8080:80"}), {held("web1", "8080:81")});
    CHECK_THAT(msg, Catch::Contains("host port 8080/tcp is already published by container web1"));
    // Every address covers one address, and the reverse.
    CHECK_THAT(error_of(specs({"192.0.2.1:8080:80"}), {held("web1", "8080:81")}),
               Catch::Contains("web1"));
    CHECK_THAT(error_of(specs({"8080:80"}), {held("web2", "192.0.2.1:8080:81")}),
               Catch::Contains("web2"));
    // Different protocol, or two different addresses: no conflict.
    CHECK(error_of(specs({"8080:80/udp"}), {held("web1", "8080:81")}).empty());
    CHECK(error_of(specs({"192.0.2.3:8080:80"}), {held("web1", "192.0.2.1:8080:81")}).empty());
    // A range overlapping a held port names the first port in conflict.
    CHECK_THAT(error_of(specs({"8000-8100:8000-8100"}), {held("db", "8050:5432")}),
               Catch::Contains("host port 8050/tcp is already published by container db"));
}

TEST_CASE("the same host port twice in one request is refused", "[allocator]") {
    CHECK_THAT(
        error_of(specs({"8080:80", "8080:81"}), {}),
        Catch::Contains("host port 8080/tcp is requested twice, by '8080:80' and by '8080:81'"));
    CHECK(error_of(specs({"8080:80", "8080:80/udp"}), {}).empty());
}

TEST_CASE("a host range gives the first free port, after explicit claims", "[allocator]") {
    auto out = allocate_ports(specs({"8000-8010:80", "8000:81"}), {held("a", "8001:1")}, {});
    REQUIRE(out.size() == 2);
    CHECK(out[0].host_port == 8002);  // 8000 is named by the second spec, 8001 is held
    CHECK(out[0].container_port == 80);
    CHECK(out[1].host_port == 8000);
    HostPortFacts facts;
    facts.in_use = [](const std::optional<IpAddress>&, Proto, std::uint16_t p) {
        return p == 8002;
    };
    CHECK(
        allocate_ports(specs({"8000-8010:80"}), {held("a", "8000-8001:1-2")}, facts)[0].host_port ==
        8003);
    CHECK_THAT(error_of(specs({"8000-8001:80"}), {held("a", "8000-8001:1-2")}),
               Catch::Contains("no free host port in 8000-8001/tcp for '8000-8001:80'"));
}

TEST_CASE("random host ports come from the local range, skipping reserved and used ones",
          "[allocator]") {
    HostPortFacts facts;
    facts.ephemeral = {40000, 40010};
    facts.reserved = [](std::uint16_t p) { return p == 40000 || p == 40002; };
    facts.in_use = [](const std::optional<IpAddress>&, Proto, std::uint16_t p) {
        return p == 40003;
    };
    auto out =
        allocate_ports(specs({"80", "127.0.0.1::81", "90-92/udp"}), {held("x", "40001:1")}, facts);
    std::vector<std::uint16_t> ports;
    for (const auto& m : out)
        for (std::uint32_t i = 0; i < m.count; ++i)
            ports.push_back(static_cast<std::uint16_t>(m.host_port + i));
    // tcp: 40000 and 40002 reserved, 40001 held, 40003 busy; udp may use 40001, held for tcp only.
    CHECK(ports == std::vector<std::uint16_t>{40004, 40005, 40001, 40004, 40005});
    CHECK(out[1].host_ip->str() == "127.0.0.1");
    CHECK_THAT(error_of(specs({"1-20"}), {}, facts),
               Catch::Contains("no free host port left in the local port range 40000-40010"));
}

TEST_CASE("65,535 ports and 10,000 specs are allocated", "[allocator]") {
    auto all = allocate_ports(specs({"1-65535:1-65535"}), {}, {});
    REQUIRE(all.size() == 1);
    CHECK(all[0].count == 65535);
    std::vector<std::string> texts;
    for (int i = 0; i < 10000; ++i)
        texts.push_back(std::to_string(10000 + i) + ":" + std::to_string(1 + i % 60000));
    std::vector<PortSpec> many;
    for (const auto& t : texts)
        many.push_back(parse_port_spec(t));
    auto out = allocate_ports(many, {}, {});
    CHECK(port_count(out) == 10000);
}
