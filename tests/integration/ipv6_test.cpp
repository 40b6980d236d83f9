// Dual stack: containers with an IPv6 address (--ipv6, --subnet6) reached by
// IPv6 clients through kernel DNAT, as IPv4 ones are; the traffic matrix of
// publish_test.cpp over IPv6. Every case runs with br_netfilter's
// bridge-nf-call-ip6tables at 0 and at 1.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bridge_nf.hpp"
#include "lab.hpp"

using namespace lab;
using Words = std::vector<std::string>;

namespace {

// The containers' IPv6 subnet in these tests; the gateway is ::1 of it.
constexpr const char* kSubnet6 = "2001:db8:1::/64";
constexpr const char* kGateway6 = "2001:db8:1::1";
constexpr const char* kHostIp6b = "2001:db8::3";  // a second IPv6 address of the host

RunResult up6(Lab& lab, const std::string& netns, const std::vector<std::string>& specs,
              std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--subnet6", kSubnet6});
    return lab.up(netns, specs, extra);
}

// TCP and UDP from `from` to ip are answered by container `name`, which sees
// the client as `peer` ("" to not check).
void check_reaches(Lab& lab, const std::string& from, const std::string& ip, int tcp_port,
                   int udp_port, const std::string& name, const std::string& peer = "") {
    INFO("from " << from << " to " << ip);
    auto reply = lab.tcp(from, ip, tcp_port);
    REQUIRE(reply);
    CHECK(words(*reply).at(0) == name);
    if (!peer.empty()) CHECK(words(*reply).at(1) == peer);
    auto dgram = lab.udp(from, ip, udp_port);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(0) == name);
    if (!peer.empty()) CHECK(words(*dgram).at(1) == peer);
}

}  // namespace

TEST_CASE("IPv6 clients reach a container with IPv6 through the kernel, keeping their address",
          "[ipv6]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-ip6tables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    auto r = up6(lab, web, {"8080:80", "5353:53/udp"}, {"--json"});
    auto report = nlohmann::json::parse(r.out);
    CHECK(report.at("address6") == "2001:db8:1::2");
    CHECK(report.at("gateway6") == kGateway6);
    // The container has the address and an IPv6 default route.
    auto inside = sh("ip -n web -6 addr show dev eth0; ip -n web -6 route show");
    CHECK_THAT(inside, Catch::Contains("inet6 2001:db8:1::2/64"));
    CHECK_THAT(inside, Catch::Contains("default via 2001:db8:1::1 dev eth0"));
    // The client's own IPv6 address arrives: kernel DNAT, not the proxy
    // (which would reach the container over IPv4).
    check_reaches(lab, "ext", kHostIp6, 8080, 5353, "web", kExtIp6);
    // Every IPv6 address of the host serves a mapping without an address.
    sh(std::string("ip addr add ") + kHostIp6b + "/64 dev ext0 nodad");
    check_reaches(lab, "ext", kHostIp6b, 8080, 5353, "web", kExtIp6);
    // IPv4 as before, and unpublished ports stay closed on both.
    check_reaches(lab, "ext", kHostIp, 8080, 5353, "web", kExtIp);
    CHECK_FALSE(lab.tcp("ext", kHostIp6, 8081, 1000));
    CHECK_FALSE(lab.udp("ext", kHostIp6, 5354, 1000));
    // No per-port rules: the ports are elements of pub6.
    auto ruleset = sh("nft list map inet portpub pub6");
    CHECK_THAT(ruleset, Catch::Contains("tcp . 8080 : 2001:db8:1::2 . 80"));
    CHECK_THAT(ruleset, Catch::Contains("udp . 5353 : 2001:db8:1::2 . 53"));
}

TEST_CASE("the host, ::1, the container itself and its neighbours reach it over IPv6", "[ipv6]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-ip6tables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    auto db = lab.container("db");
    up6(lab, web, {"8080:80", "5353:53/udp"});
    up6(lab, db, {"9090:80"});
    // The host to its own addresses (the bridge's too): kernel DNAT at output.
    for (const char* ip : {kHostIp6, kGateway6})
        check_reaches(lab, "host", ip, 8080, 5353, "web");
    // ::1: the proxy, TCP and UDP.
    check_reaches(lab, "host", "::1", 8080, 5353, "web");
    // Hairpin: the container through a host address reaches itself.
    check_reaches(lab, "web", kHostIp6, 8080, 5353, "web");
    // Another container of the network.
    check_reaches(lab, "db", kHostIp6, 8080, 5353, "web");
    CHECK(lab.answering("web", kHostIp6, 9090) == "db");
    // And directly, on any port, within the network.
    CHECK(lab.answering("db", "2001:db8:1::2", 81) == "web");
}

TEST_CASE("the first IPv6 connection right after up is answered at once", "[ipv6]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-ip6tables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    auto db = lab.container("db");
    up6(lab, web, {"8080:80"});
    up6(lab, db, {"9090:80"});
    // No address of the bridge is left tentative (in duplicate address
    // detection): while its link-local one was, the bridge sent no neighbour
    // solicitation for a container, and the first connections waited for it.
    CHECK_THAT(sh("ip -6 addr show dev portpub0"), !Catch::Contains("tentative"));
    // A client does not wait: each container's address is looked up on the
    // bridge for the first time here, and the answer comes at once (it came
    // after two seconds or more, when the link-local address was ready).
    // One second is the bound: a TCP client sends its SYN again after it.
    CHECK(lab.answering("host", kHostIp6, 8080, 1000) == "web");
    CHECK(lab.answering("ext", kHostIp6, 9090, 1000) == "db");
}

TEST_CASE("a mapping bound to one IPv6 address is served there only", "[ipv6]") {
    Lab lab;
    auto web = lab.container("web");
    sh(std::string("ip addr add ") + kHostIp6b + "/64 dev ext0 nodad");
    up6(lab, web, {"[2001:db8::1]:8080:80", "[2001:db8::1]:5353:53/udp", "[::1]:8081:81"});
    check_reaches(lab, "ext", kHostIp6, 8080, 5353, "web", kExtIp6);
    CHECK_FALSE(lab.tcp("ext", kHostIp6b, 8080, 1000));
    CHECK_FALSE(lab.udp("ext", kHostIp6b, 5353, 1000));
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));  // IPv6 only
    // [::1] is the proxy's, on this host only.
    CHECK(lab.answering("host", "::1", 8081) == "web");
    CHECK_FALSE(lab.tcp("ext", kHostIp6, 8081, 1000));
}

TEST_CASE("containers reach IPv6 hosts with the host's address, and are closed to them", "[ipv6]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-ip6tables=" << nf);
    Lab lab(nf);
    lab.watch = false;  // what a user sees and mends by hand
    lab.serve("ext");
    auto web = lab.container("web");
    up6(lab, web, {"8080:80"});
    // Outbound traffic is masqueraded: the other host sees 2001:db8::1.
    auto reply = lab.tcp("web", kExtIp6, 80);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"ext", kHostIp6, "hello"});
    auto dgram = lab.udp("web", kExtIp6, 53);
    REQUIRE(dgram);
    CHECK(words(*dgram) == Words{"ext", kHostIp6, "hello"});
    // The other host routes the containers' IPv6 subnet through this host,
    // and still reaches nothing but the published port through a host address.
    sh(std::string("ip -n ext route add ") + kSubnet6 + " via " + kHostIp6);
    CHECK_FALSE(lab.tcp("ext", "2001:db8:1::2", 81, 1000));
    CHECK_FALSE(lab.tcp("ext", "2001:db8:1::2", 80, 1000));
    CHECK_FALSE(lab.udp("ext", "2001:db8:1::2", 54, 1000));
    CHECK(lab.answering("ext", kHostIp6, 8080) == "web");
    // The route is real: without portpub's forward rules the container answers.
    sh("nft flush chain inet portpub forward");
    CHECK(lab.answering("ext", "2001:db8:1::2", 81) == "web");
}

TEST_CASE("a unique local /64 with --ipv6 alone, and down leaves nothing, IPv6 forwarding too",
          "[ipv6]") {
    Lab lab;
    sh("echo 0 > /proc/sys/net/ipv6/conf/all/forwarding");
    const auto before = lab.snapshot();
    auto web = lab.container("web");
    auto r = lab.up(web, {"8080:80", "5353:53/udp"}, {"--ipv6", "--json"});
    auto report = nlohmann::json::parse(r.out);
    const std::string address6 = report.at("address6");
    CHECK(address6.rfind("fd", 0) == 0);
    CHECK_THAT(report.at("subnet6").get<std::string>(), Catch::EndsWith("::/64"));
    CHECK(sh("cat /proc/sys/net/ipv6/conf/all/forwarding") == "1\n");
    check_reaches(lab, "ext", kHostIp6, 8080, 5353, "web", kExtIp6);
    // The same bridge keeps its subnet: the next container is next to the first.
    auto db = lab.container("db");
    auto r2 = lab.up(db, {"9090:80"}, {"--ipv6", "--json"});
    CHECK(nlohmann::json::parse(r2.out).at("subnet6") == report.at("subnet6"));
    // A container asking for IPv4 only on that bridge is told what to do.
    auto v4 = lab.container("v4");
    auto refused = lab.portpub({"up", "--netns", v4, "--subnet", kSubnet, "-p", "7070:80"});
    CHECK(refused.status == 1);
    CHECK_THAT(refused.err,
               Catch::Contains("bridge portpub0 serves") && Catch::Contains("pass --subnet6"));
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    lab.remove_container("web");
    lab.remove_container("db");
    lab.remove_container("v4");
    CHECK(diff_lines(before, lab.snapshot()).empty());
}

TEST_CASE("an IPv4-only container stays reachable from IPv6 clients, through the proxy", "[ipv6]") {
    Lab lab;
    auto web = lab.container("web");
    lab.up(web, {"8080:80", "5353:53/udp"});
    // The proxy reaches the container over IPv4: the container sees the gateway.
    auto reply = lab.tcp("ext", kHostIp6, 8080);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"web", "198.51.100.1", "hello"});
    auto dgram = lab.udp("ext", kHostIp6, 5353);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(0) == "web");
    CHECK(lab.answering("host", "::1", 8080) == "web");
}

TEST_CASE("after a ruleset flush or a lost bridge address, restore brings IPv6 back", "[ipv6]") {
    Lab lab;
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    up6(lab, web, {"8080:80", "5353:53/udp"});
    REQUIRE(lab.portpub({"check"}).status == 0);

    sh("nft flush ruleset");
    CHECK_FALSE(lab.tcp("ext", kHostIp6, 8080, 1000));
    CHECK(lab.portpub({"check"}).status == 1);
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    check_reaches(lab, "ext", kHostIp6, 8080, 5353, "web", kExtIp6);

    // The container's IPv6 gateway, taken off the bridge by hand.
    sh(std::string("ip addr del ") + kGateway6 + "/64 dev portpub0");
    CHECK_FALSE(lab.tcp("ext", kHostIp6, 8080, 1000));
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out,
               Catch::Contains("web: address 2001:db8:1::1 of bridge portpub0 is missing\n"));
    CHECK(lab.portpub({"restore"}).status == 0);
    check_reaches(lab, "ext", kHostIp6, 8080, 5353, "web", kExtIp6);
    CHECK(lab.portpub({"check"}).status == 0);
}
