// The plan of an `up`: ids from the namespace file, addresses for first and later containers,
// every refusal made before any change (names, networks, ids and namespaces in use, host
// addresses, the proxy), host veth names and MACs, and IPv6 addresses.
#include "portpub/planner.hpp"

#include <catch2/catch.hpp>

#include "portpub/error.hpp"
#include "portpub/ipam.hpp"
#include "test_support.hpp"

using namespace portpub;

namespace {

UpRequest request(std::vector<std::string> specs, const std::string& netns = "/run/netns/web") {
    UpRequest r;
    r.specs = std::move(specs);
    r.netns = netns;
    return r;
}

const NetnsIdentity kWeb{"/run/netns/web", 4026532001};

std::string error_of(const UpRequest& r, const std::vector<Publication>& existing = {},
                     const NetnsIdentity& ns = kWeb) {
    try {
        plan_up(r, ns, existing, {});
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("ids come from the namespace file", "[planner]") {
    CHECK(derive_id("/run/netns/web", 7) == "web");
    CHECK(derive_id("/var/run/docker/netns/3f2a", 7) == "3f2a");
    CHECK(derive_id("/proc/1234/ns/net", 4026532001) == "netns-4026532001");
    CHECK(derive_id("/run/netns/-bad", 9) == "netns-9");
    CHECK(derive_id("/tmp/x", 9) == "netns-9");
}

TEST_CASE("ids and interface names are validated", "[planner]") {
    CHECK_NOTHROW(validate_id("web-1_a.b"));
    // Docker's and Podman's ids (64 hex digits), Podman's names, containerd's.
    CHECK_NOTHROW(validate_id("3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10"));
    CHECK_NOTHROW(validate_id("sharp_lovelace"));
    CHECK_NOTHROW(validate_id("web.prod-2"));
    CHECK_NOTHROW(validate_id("1a..b"));  // ".." inside a name is no path
    CHECK_NOTHROW(validate_id(std::string(128, 'a')));
    CHECK_THROWS_WITH(validate_id("../etc"), Catch::Contains("invalid container id '../etc'"));
    for (const auto& bad :
         std::vector<std::string>{"a/b", "/etc", "..", ".", ".hidden", "-rf", "", "a b", "a\\b",
                                  "a:b", "a+b", "caf\xc3\xa9", std::string(129, 'a'),
                                  std::string("a\0b", 3), "a\nb", "a\tb", "a\x7f", "a\xff"}) {
        INFO(bad);
        CHECK_THROWS_WITH(validate_id(bad), Catch::Contains("invalid container id") &&
                                                Catch::Contains("use 1-128 letters"));
    }
    // Shown, never echoed raw: one line, cut when long.
    CHECK_THROWS_WITH(validate_id(std::string("a\0b\n", 4)),
                      Catch::StartsWith("invalid container id 'a\\x00b\\x0a'"));
    CHECK_THROWS_WITH(validate_id(std::string(10000, 'x') + "/"),
                      Catch::Contains("... (10001 characters)"));
    CHECK_NOTHROW(validate_network_name("podman"));
    CHECK_NOTHROW(validate_network_name("k8s-pod-network.v1_2"));
    CHECK_NOTHROW(validate_network_name(std::string(255, 'n')));
    for (const auto& bad : std::vector<std::string>{"", "../net", "a/b", ".net", "net work",
                                                    std::string(256, 'n'), std::string("n\0", 2)}) {
        INFO(bad);
        CHECK_THROWS_WITH(validate_network_name(bad), Catch::Contains("invalid network name"));
    }
    CHECK_NOTHROW(validate_netns_path("/run/netns/web"));
    CHECK_NOTHROW(validate_netns_path("/run/netns/caf\xc3\xa9"));
    CHECK_THROWS_WITH(validate_netns_path("/run/netns/w\xff"),
                      Catch::Contains("namespace path '/run/netns/w\\xff'"));
    CHECK_THROWS_AS(validate_netns_path("/run/netns/w\n"), Error);
    CHECK_NOTHROW(validate_ifname("eth0", "--ifname"));
    CHECK_THROWS_WITH(validate_ifname("a-very-long-name0", "--ifname"),
                      Catch::Contains("invalid --ifname"));
    CHECK_THROWS_AS(validate_ifname("a/b", "--bridge"), Error);
    CHECK_THROWS_AS(validate_ifname("a b", "--bridge"), Error);
    CHECK_THROWS_AS(validate_ifname("..", "--bridge"), Error);
    CHECK_THROWS_AS(validate_ifname("br\xc3\xa9", "--bridge"), Error);
    CHECK_THROWS_AS(validate_ifname(std::string("br\0", 3), "--bridge"), Error);
}

TEST_CASE("host veth names are recognised as portpub's, and no others", "[planner]") {
    const auto name = host_veth_name(*IpAddress::parse("198.51.100.2"));
    CHECK(name == "ppc6336402");
    CHECK(is_host_veth_name(name));
    for (const char* other :
         {"veth1234", "ppc633640", "ppc63364021", "ppC6336402", "pqc6336402", "eth0", "portpub0"})
        CHECK_FALSE(is_host_veth_name(other));
}

TEST_CASE("a first container gets the defaults and the first address", "[planner]") {
    auto plan = plan_up(request({"8080:80", "5353:53/udp"}), kWeb, {}, {});
    const auto& p = plan.publication;
    CHECK_FALSE(plan.replaces);
    CHECK(p.id == "web");
    CHECK(p.network.bridge == "portpub0");
    CHECK(p.network.subnet.str() == "10.77.0.0/16");
    CHECK(p.network.gateway.str() == "10.77.0.1");
    CHECK(p.address.str() == "10.77.0.2");
    CHECK(p.host_veth == "pp0a4d0002");
    CHECK(p.ifname == "eth0");
    CHECK(p.netns_inode == kWeb.inode);
    REQUIRE(p.mappings.size() == 2);
}

TEST_CASE("a second container gets the next address, up again keeps it", "[planner]") {
    auto a = test::publication("a", "10.77.0.2", {"8080:80"});
    auto plan = plan_up(request({"9090:80"}), kWeb, {a}, {});
    CHECK(plan.publication.address.str() == "10.77.0.3");
    auto again = plan_up(request({"9091:80"}), kWeb, {a, plan.publication}, {});
    REQUIRE(again.replaces);
    CHECK(again.replaces->id == "web");
    CHECK(again.publication.address.str() == "10.77.0.3");
    // Its own old ports do not conflict with the new ones.
    CHECK_NOTHROW(plan_up(request({"9090:80"}), kWeb, {a, plan.publication}, {}));
}

TEST_CASE("the planner refuses what cannot work, before anything changes", "[planner]") {
    auto web1 = test::publication("web1", "10.77.0.2", {"8080:80"});
    CHECK_THAT(error_of(request({"8080:80"}), {web1}),
               Catch::Contains("host port 8080/tcp is already published by container web1"));
    CHECK_THAT(error_of(request({"8080:99999"})),
               Catch::Contains("invalid port spec '8080:99999'"));
    auto r = request({"80"});
    r.subnet = "10.77.0.5/16";
    CHECK_THAT(error_of(r), Catch::Contains("did you mean 10.77.0.0/16"));
    r.subnet = "10.77.0.0/31";
    CHECK_THAT(error_of(r), Catch::Contains("leaves no room"));
    r.subnet = "127.0.0.0/16";
    CHECK_THAT(error_of(r), Catch::Contains("127.0.0.0/8"));
    r.subnet = "2001:db8::/64";
    CHECK_THAT(error_of(r), Catch::Contains("IPv4"));
    r.subnet = "nonsense";
    CHECK_THAT(error_of(r), Catch::Contains("invalid --subnet 'nonsense'"));
    r = request({"80"});
    r.bridge = "br/0";
    CHECK_THAT(error_of(r), Catch::Contains("invalid --bridge"));
    r = request({"80"});
    r.id = "../../etc/passwd";
    CHECK_THAT(error_of(r), Catch::Contains("invalid container id"));
}

TEST_CASE("loopback and IPv6 host addresses need the proxy", "[planner]") {
    auto with = plan_up(request({"127.0.0.1:8080:80", "[::1]:8081:81"}), kWeb, {}, {});
    REQUIRE(with.publication.proxy);
    CHECK(with.publication.proxy->reserve);
    CHECK(with.publication.proxy->udp_timeout == 90);
    auto r = request({"127.0.0.1:8080:80"});
    r.proxy = false;
    CHECK_THAT(error_of(r), Catch::Contains("served by the userland proxy only"));
    CHECK_THAT(error_of(r), Catch::Contains("--no-proxy"));
    r.specs = {"[2001:db8::1]:8080:80"};
    CHECK_THAT(error_of(r), Catch::Contains("the container has IPv4 only"));
    r.specs = {"0.0.0.0:8080:80", "192.0.2.1:8081:81"};
    CHECK(error_of(r).empty());
    CHECK_FALSE(plan_up(r, kWeb, {}, {}).publication.proxy);  // nothing for a proxy to do
    // Only kernel-served mappings: no proxy even when allowed.
    CHECK_FALSE(
        plan_up(request({"192.0.2.1:8080:80", "9:9/sctp"}), kWeb, {}, {}).publication.proxy);
}

TEST_CASE("networks must agree with the containers already on them", "[planner]") {
    auto other =
        test::publication("db", "198.51.100.2", {"5432:5432"}, "portpub0", "198.51.100.0/24");
    CHECK_THAT(
        error_of(request({"80"}), {other}),
        Catch::Contains("bridge portpub0 already serves subnet 198.51.100.0/24 (container db)"));
    auto r = request({"80"});
    r.bridge = "br1";
    r.subnet = "198.51.100.0/25";
    CHECK_THAT(error_of(r, {other}),
               Catch::Contains("overlaps 198.51.100.0/24 of bridge portpub0"));
    r.subnet = "198.51.101.0/24";
    CHECK(error_of(r, {other}).empty());
}

TEST_CASE("one namespace under two ids is refused", "[planner]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    web.netns_inode = kWeb.inode;
    auto r = request({"9090:80"});
    r.id = "other";
    CHECK_THAT(error_of(r, {web}), Catch::Contains("already published as container web"));
}

TEST_CASE("an id is taken over only from its own namespace or a gone one", "[planner]") {
    auto other = test::publication("web", "10.77.0.2", {"8080:80"});
    other.netns = "/run/netns/a";  // another namespace, same id
    auto r = request({"9090:80"});
    auto alive = [](const Publication&) { return true; };
    auto gone = [](const Publication&) { return false; };
    try {
        plan_up(r, kWeb, {other}, {}, alive);
        FAIL("a live container's id was taken over");
    } catch (const Error& e) {
        CHECK_THAT(e.what(),
                   Catch::Contains("container id web is already used for namespace /run/netns/a"));
    }
    auto plan = plan_up(r, kWeb, {other}, {}, gone);
    REQUIRE(plan.replaces);
    CHECK(plan.replaces->netns == "/run/netns/a");
    auto same = other;
    same.netns_inode = kWeb.inode;  // the same namespace under another path
    CHECK(plan_up(r, kWeb, {same}, {}, alive).replaces);
}

TEST_CASE("a host address must be one of the host's", "[planner]") {
    HostPortFacts facts;
    facts.is_local = [](const IpAddress& a) { return a.str() == "192.0.2.1"; };
    CHECK_NOTHROW(
        plan_up(request({"192.0.2.1:8080:80", "0.0.0.0:8081:81", "8082:82"}), kWeb, {}, facts));
    CHECK_THROWS_WITH(
        plan_up(request({"192.0.2.9:8080:80"}), kWeb, {}, facts),
        Catch::Contains(
            "host address 192.0.2.9 in '192.0.2.9:8080:80' is not an address of this host"));
}

TEST_CASE("a container's MAC follows from its address", "[planner]") {
    CHECK(container_mac(*IpAddress::parse("198.51.100.3")) ==
          std::array<std::uint8_t, 6>{0x02, 0x70, 198, 51, 100, 3});
    CHECK(container_mac(*IpAddress::parse("10.77.0.2")) !=
          container_mac(*IpAddress::parse("10.77.0.3")));
}

TEST_CASE("the container gets an IPv6 address too with --ipv6 or --subnet6", "[planner]") {
    auto r = request({"8080:80"});
    CHECK_FALSE(plan_up(r, kWeb, {}, {}).publication.address6);
    r.ipv6 = true;
    auto pub = plan_up(r, kWeb, {}, {}).publication;
    REQUIRE(pub.address6);
    CHECK(pub.network.subnet6 == default_subnet6("portpub0"));
    CHECK(*pub.address6 == pub.network.subnet6->network().plus(2));
    CHECK(pub.network.gateway6 == pub.network.subnet6->network().plus(1));

    r.subnet6 = "2001:db8:1::/64";
    pub = plan_up(r, kWeb, {}, {}).publication;
    CHECK(pub.address6->str() == "2001:db8:1::2");
    CHECK(pub.network.gateway6.str() == "2001:db8:1::1");

    // The next container on the bridge gets the next address; the same one again keeps its own.
    auto other = request({"8081:80"}, "/run/netns/db");
    other.subnet6 = r.subnet6;
    auto db = plan_up(other, {"/run/netns/db", 4026532002}, {pub}, {}).publication;
    CHECK(db.address6->str() == "2001:db8:1::3");
    CHECK(plan_up(r, kWeb, {pub, db}, {}).publication.address6 == pub.address6);
}

TEST_CASE("a bad --subnet6, or one a bridge does not serve, is refused before any change",
          "[planner]") {
    auto r = request({"8080:80"});
    for (const auto& [subnet6, error] : std::vector<std::pair<std::string, std::string>>{
             {"10.0.0.0/24", "expected an IPv6 prefix"},
             {"2001:db8::1/64", "host bits are set; did you mean 2001:db8::/64?"},
             {"2001:db8::/127", "leaves no room"},
             {"fe80::/64", "overlaps fe80::/10"},
             {"::/0", "overlaps ::/8"}}) {
        r.subnet6 = subnet6;
        CHECK_THAT(error_of(r), Catch::Contains("invalid --subnet6") && Catch::Contains(error));
    }
    // Every container of a bridge has the same IPv6 setting.
    auto v4only = plan_up(request({"8080:80"}), kWeb, {}, {}).publication;
    auto db = request({"8081:80"}, "/run/netns/db");
    db.ipv6 = true;
    CHECK_THAT(error_of(db, {v4only}, {"/run/netns/db", 4026532002}),
               Catch::Contains("bridge portpub0 serves no IPv6 (container web)") &&
                   Catch::Contains("drop --ipv6 and --subnet6"));
    // Two bridges cannot share an IPv6 subnet.
    auto web6 = request({"8080:80"});
    web6.subnet6 = "2001:db8:1::/64";
    auto pub = plan_up(web6, kWeb, {}, {}).publication;
    db.bridge = "portpub1";
    db.subnet = "10.78.0.0/16";
    db.subnet6 = "2001:db8:1::/80";
    CHECK_THAT(error_of(db, {pub}, {"/run/netns/db", 4026532002}),
               Catch::Contains("overlaps 2001:db8:1::/64 of bridge portpub0"));
}

TEST_CASE("without the proxy an IPv6 host address needs a container with IPv6", "[planner]") {
    auto r = request({"[2001:db8::1]:8080:80"});
    r.proxy = false;
    CHECK_THAT(error_of(r), Catch::Contains("--ipv6 gives it IPv6"));
    r.ipv6 = true;
    CHECK(error_of(r).empty());
}
