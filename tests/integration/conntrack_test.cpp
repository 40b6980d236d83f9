// UDP clients that keep sending across a change of the published port: the
// kernel's conntrack entries must not keep them on the old path.
#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lab.hpp"

using namespace lab;
namespace {

std::string address_of(const RunResult& up_json) {
    return nlohmann::json::parse(up_json.out)["address"].get<std::string>();
}

// The UDP entries of the lab's host namespace to a destination port, as
// `conntrack -L` lists them.
std::string conntrack_udp(int dport, const std::string& family = "ipv4") {
    return sh("conntrack -L -f " + family + " -p udp --dport " + std::to_string(dport) +
              " 2>/dev/null");
}

}  // namespace

TEST_CASE("a UDP client that keeps sending reaches the new container after down and up",
          "[conntrack]") {
    Lab lab(0);
    // "first" takes the lab's first address and leaves, so that b, which
    // comes after a, gets another address than a had. "other" stays: the
    // host keeps tracking connections meanwhile, as a host with any
    // firewall or other containers does.
    auto first = lab.container("first");
    auto a = lab.container("a");
    auto other = lab.container("other");
    auto b = lab.container("b");
    lab.up(first, {"8080:80"});
    const auto a_address = address_of(lab.up(a, {"5353:53/udp"}, {"--json"}));
    lab.up(other, {"8081:80"});
    REQUIRE(lab.portpub({"down", "--id", "first"}).status == 0);

    // An unrelated flow of the host, which no flush may touch.
    lab.serve("ext");
    REQUIRE(lab.udp("host", kExtIp, 53));

    UdpStream client(lab, "ext", kHostIp, 5353, 40053);
    auto from_a = client.wait_for([](const std::string& r) { return words(r).at(0) == "a"; }, 3000);
    REQUIRE(from_a);
    CHECK(words(*from_a).at(1) == kExtIp);
    const auto before = conntrack_udp(5353);
    INFO("conntrack before down:\n" << before);
    REQUIRE_THAT(before, Catch::Contains("src=" + a_address));

    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    // The client kept sending meanwhile; no entry leads to a any more.
    const auto after_down = conntrack_udp(5353);
    INFO("conntrack after down:\n" << after_down);
    CHECK_THAT(after_down, !Catch::Contains(a_address));
    CHECK_THAT(conntrack_udp(53), Catch::Contains("dst=" + std::string(kExtIp)));

    const auto b_address = address_of(lab.up(b, {"5353:53/udp"}, {"--json"}));
    REQUIRE(b_address != a_address);
    // b answers by kernel DNAT (it sees the client's own address), not only
    // by the proxy (it would see the gateway's).
    const auto seen_before = client.seen().size();
    auto from_b = client.wait_for(
        [](const std::string& r) { return words(r).at(0) == "b" && words(r).at(1) == kExtIp; },
        5000);
    std::string since_up;  // the first few tell the story
    for (auto i = seen_before; i < std::min(client.seen().size(), seen_before + 5); ++i)
        since_up += client.seen()[i] + "\n";
    INFO("replies since b's up:\n" << since_up << "conntrack:\n" << conntrack_udp(5353));
    CHECK(from_b);
}

TEST_CASE("down deletes the entries of its UDP ports only: by address, range and family",
          "[conntrack]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto other = lab.container("other");
    lab.up(a, {"5353:53/udp", "192.0.2.1:6000-6001:53-54/udp"});
    lab.up(other, {"8080:80"});  // the host keeps tracking connections after a's down
    // Answered: by a through kernel DNAT, by a's proxy for IPv6.
    REQUIRE(lab.udp("ext", kHostIp, 5353));
    REQUIRE(lab.udp("ext", kHostIp6, 5353));
    REQUIRE(lab.udp("ext", kHostIp, 6001));
    // Not published, so not answered, but tracked all the same.
    CHECK_FALSE(lab.udp("ext", kHostIp2, 6000, 500));
    CHECK_FALSE(lab.udp("ext", kHostIp, 6002, 500));
    const auto before = conntrack_udp(5353) + conntrack_udp(5353, "ipv6") + conntrack_udp(6000) +
                        conntrack_udp(6001) + conntrack_udp(6002);
    INFO("conntrack before down:\n" << before);
    REQUIRE_THAT(before, Catch::Contains("dst=2001:db8::1"));
    REQUIRE_THAT(conntrack_udp(6001), Catch::Contains("dst=192.0.2.1"));

    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    CHECK(conntrack_udp(5353).empty());
    CHECK(conntrack_udp(5353, "ipv6").empty());
    CHECK(conntrack_udp(6001).empty());
    // 6000 was published on 192.0.2.1 only, and 6002 not at all.
    CHECK_THAT(conntrack_udp(6000), Catch::Contains("dst=" + std::string(kHostIp2)));
    CHECK_THAT(conntrack_udp(6002), Catch::Contains("dport=6002"));
}

TEST_CASE("up and down leave the host's own flows to another machine's port of that number",
          "[conntrack]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80"});  // the host tracks connections from here on
    // The host's own client of another machine's 5353 (nothing answers there).
    for (const char* ip : {kExtIp, kExtIp6})
        lab.udp_send("host", ip, 5353);
    auto tracked = [] { return conntrack_udp(5353) + conntrack_udp(5353, "ipv6"); };
    REQUIRE_THAT(tracked(), Catch::Contains("dst=" + std::string(kExtIp)) &&
                                Catch::Contains("dst=" + std::string(kExtIp6)));
    // Another container publishes 5353/udp, and takes it away again.
    lab.up(b, {"5353:53/udp"});
    CHECK_THAT(tracked(), Catch::Contains("dst=" + std::string(kExtIp)) &&
                              Catch::Contains("dst=" + std::string(kExtIp6)));
    REQUIRE(lab.portpub({"down", "--id", "b"}).status == 0);
    CHECK_THAT(tracked(), Catch::Contains("dst=" + std::string(kExtIp)) &&
                              Catch::Contains("dst=" + std::string(kExtIp6)));
}

TEST_CASE("down deletes the entries of a 65,535-port range, however many", "[conntrack]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto other = lab.container("other");
    lab.up(a, {"1-65535:1-65535/udp"}, {"--no-proxy"});
    lab.up(other, {"8080:80"});
    // More flows than one send of delete requests holds, across the range.
    constexpr int kFlows = 300;
    for (int i = 0; i < kFlows; ++i)
        lab.udp_send("ext", kHostIp, 1 + i * 218);
    auto count = [] {
        return words(sh("conntrack -L -p udp -d " + std::string(kHostIp) + " 2>/dev/null | wc -l"))
            .at(0);
    };
    REQUIRE(count() == std::to_string(kFlows));
    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    CHECK(count() == "0");
}
