// `down` removes exactly what `up` made, twice is fine, and a missing
// namespace is no obstacle.
#include <catch2/catch.hpp>

#include "lab.hpp"

using namespace lab;

TEST_CASE("down leaves the machine as it was, and a fresh up reuses the address", "[teardown]") {
    const int nf = GENERATE(0, 1);
    if (nf == 1 && !Lab::has_bridge_netfilter()) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    const auto inside_before = sh("ip -n web -o addr show; ip -n web route show");

    auto r = lab.up(web, {"8080:80", "5353:53/udp", "7000-7099:7000-7099"}, {"--json"});
    CHECK_THAT(r.out, Catch::Contains(R"("address":"198.51.100.2")"));
    REQUIRE(lab.tcp("ext", kHostIp, 8080));
    CHECK(sh("cat /proc/sys/net/ipv4/ip_forward") == "1\n");
    CHECK_THAT(sh("nft list map inet portpub pub4"),
               Catch::Contains("tcp . 8080 : 198.51.100.2 . 80"));

    auto down = lab.portpub({"down", "--netns", web});
    CHECK(down.status == 0);
    CHECK(down.out == "web\n");
    CHECK(lab.snapshot() == before);  // no veth, bridge, map element, rule, record; ip_forward back
    CHECK(sh("ip -n web -o addr show; ip -n web route show") != inside_before);  // lo went up
    CHECK(sh("ip -n web -o link show").find("eth0") == std::string::npos);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));

    auto again = lab.up(web, {"8080:80"}, {"--json"});
    CHECK_THAT(again.out, Catch::Contains(R"("address":"198.51.100.2")"));
    REQUIRE(lab.tcp("ext", kHostIp, 8080));
}

TEST_CASE("down of one container leaves the others working", "[teardown]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    const auto before = lab.snapshot();
    lab.up(a, {"8080:80"});
    lab.up(b, {"9090:80"});
    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    CHECK(lab.answering("ext", kHostIp, 9090) == "b");
    // a's address is free again and goes to the next container.
    auto c = lab.container("c");
    CHECK_THAT(lab.up(c, {"7070:80"}, {"--json"}).out,
               Catch::Contains(R"("address":"198.51.100.2")"));
    REQUIRE(lab.portpub({"down", "--id", "b"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "c"}).status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("down twice, and down after the namespace is gone, both succeed", "[teardown]") {
    Lab lab(1);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80", "5353:53/udp"});
    lab.remove_container("web");  // the container exited; its namespace is gone
    auto down = lab.portpub({"down", "--netns", web});
    CHECK(down.status == 0);
    CHECK(down.out == "web\n");
    CHECK(lab.snapshot() == before);
    auto twice = lab.portpub({"down", "--netns", web});
    CHECK(twice.status == 0);
    CHECK_THAT(twice.err, Catch::Contains("nothing is published for /run/netns/web"));
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("down works after the ruleset was flushed behind portpub's back", "[teardown]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"});
    lab.up(db, {"9090:80"});
    sh("nft flush map inet portpub pub4");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    sh("nft flush ruleset");
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("up again for the same namespace replaces its publication", "[teardown]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    auto r = lab.up(web, {"9090:80"}, {"--json"});
    CHECK_THAT(r.out, Catch::Contains(R"("address":"198.51.100.2")"));
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    CHECK(lab.answering("ext", kHostIp, 9090) == "web");
    auto ls = lab.portpub({"ls"}).out;
    CHECK(std::count(ls.begin(), ls.end(), '\n') == 2);  // header and one container
}

TEST_CASE("a bridge portpub did not create is reused and left in place", "[teardown]") {
    Lab lab(0);
    auto web = lab.container("web");
    sh("ip link add br-user type bridge && ip addr add 198.51.100.1/24 dev br-user && "
       "ip link set br-user up");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"}, {"--bridge", "br-user"});
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");  // br-user and its address stay
}

TEST_CASE("a bare bridge gets the gateway and is put back as it was on down", "[teardown]") {
    Lab lab(0);
    auto web = lab.container("web");
    sh("ip link add br-bare type bridge");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"}, {"--bridge", "br-bare"});
    CHECK_THAT(sh("ip -o addr show dev br-bare"), Catch::Contains("198.51.100.1/24"));
    REQUIRE(lab.tcp("ext", kHostIp, 8080));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");  // still there, down, no address
}

TEST_CASE("the gateway's MAC stays the same as containers come and go", "[teardown]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    auto c = lab.container("c");
    lab.up(a, {"8080:80"});
    const auto first = sh("ip -o link show portpub0 | grep -o 'link/ether [0-9a-f:]*'");
    lab.up(b, {"9090:80"});
    lab.up(c, {"7070:80"});
    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "b"}).status == 0);
    CHECK(sh("ip -o link show portpub0 | grep -o 'link/ether [0-9a-f:]*'") == first);
    // c still reaches the outside through the gateway it knew.
    CHECK(lab.answering("c", kHostIp, 7070) == "c");
}

TEST_CASE("a reused address answers at once: the host's ARP cache is never stale", "[teardown]") {
    Lab lab(0);
    auto keep = lab.container("keep");
    auto a = lab.container("a");
    auto b = lab.container("b");
    // Another container keeps the bridge's carrier up, so that the kernel
    // does not flush its neighbour cache when a's port goes.
    lab.up(keep, {"9090:80"});
    lab.up(a, {"8080:80"});
    REQUIRE(lab.tcp("ext", kHostIp, 8080));  // the host now has a's MAC in its neighbour cache
    REQUIRE(lab.portpub({"down", "--id", "a"}).status == 0);
    // b gets a's address; the host must reach it right away, not after the
    // cached entry for that address expires.
    CHECK_THAT(lab.up(b, {"8080:80"}, {"--json"}).out,
               Catch::Contains(R"("address":"198.51.100.3")"));
    CHECK(lab.answering("ext", kHostIp, 8080, 2000) == "b");
}
