// portpub killed at every step of up and down, then the next command; gc of
// containers that are gone and of debris no record accounts for; check and
// restore after the ruleset was flushed or a piece was removed by hand.
#include <signal.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <string>

#include "lab.hpp"
#include "portpub/crash_points.hpp"

using namespace lab;

namespace {

const std::vector<std::string> kWebPorts{"8080:80", "5353:53/udp"};

// `portpub ARGS` killed with SIGKILL right after `step`.
RunResult crash_at(const Lab& lab, const std::string& step, std::vector<std::string> args) {
    return lab.portpub(std::move(args),
                       [&] { ::setenv(portpub::kCrashAtVariable, step.c_str(), 1); });
}

// Everything a user of web would try: other hosts, the host's own address,
// loopback through the proxy, UDP; and `portpub check` agrees.
void require_web_published(Lab& lab, bool ipv6 = false) {
    if (ipv6) {  // kernel DNAT to the container's IPv6 address: the client's address arrives
        auto reply = lab.tcp("ext", kHostIp6, 8080);
        REQUIRE(reply);
        CHECK(words(*reply).at(1) == kExtIp6);
    }
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    CHECK(lab.answering("host", kHostIp, 8080) == "web");
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK(lab.udp("ext", kHostIp, 5353).has_value());
    auto check = lab.portpub({"check"});
    CHECK(check.status == 0);
    CHECK(check.out.find("ok: ") == 0);
    INFO(check.out << check.err);
}

}  // namespace

TEST_CASE("a portpub killed at any step of up or down is finished by the next command",
          "[recovery]") {
    const std::string next = GENERATE("up", "down", "gc");
    const bool bystander = GENERATE(false, true);
    const bool ipv6 = GENERATE(false, true);  // a dual-stack container, alone
    if (ipv6 && bystander) return;
    INFO("next command: " << next << (bystander ? ", another container published" : "")
                          << (ipv6 ? ", container with IPv6" : ""));
    const std::vector<std::string> v6_args =
        ipv6 ? std::vector<std::string>{"--subnet6", "2001:db8:1::/64"}
             : std::vector<std::string>{};
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    if (bystander) lab.up(lab.container("db"), {"9090:80"});
    const auto before = lab.snapshot();

    for (const auto& [step, name] : portpub::kSteps) {
        const std::string at(name);
        if (at.rfind("restore:", 0) == 0) continue;  // the watcher's: watch_test.cpp
        INFO("killed after " << at);
        const bool in_down = at.rfind("down:", 0) == 0;
        if (in_down) lab.up(web, kWebPorts, v6_args);
        std::vector<std::string> args{"down", "--id", "web"};
        if (!in_down) {
            args = {"up", "--netns", web, "--subnet", kSubnet};
            args.insert(args.end(), v6_args.begin(), v6_args.end());
            for (const auto& p : kWebPorts) {
                args.push_back("-p");
                args.push_back(p);
            }
        }
        auto crashed = crash_at(lab, at, args);
        REQUIRE(crashed.status == 128 + SIGKILL);  // the step was reached

        if (next == "up") {
            lab.up(web, kWebPorts, v6_args);
            require_web_published(lab, ipv6);
            CHECK(proxies().size() == (bystander ? 2u : 1u));
            REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
        } else if (next == "down") {
            auto down = lab.portpub({"down", "--id", "web"});
            CHECK(down.status == 0);
            // Only after the last step is there nothing left to take down.
            CHECK((down.out == "web\n") == (at != "down:record-removed"));
        } else {
            auto gc = lab.portpub({"gc"});
            CHECK(gc.status == 0);
            if (at == "up:published") {
                // Killed after the record said published: it is whole.
                CHECK(gc.out == "nothing to remove\n");
                require_web_published(lab, ipv6);
                REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
            } else if (at != "down:record-removed") {
                CHECK_THAT(gc.out, Catch::StartsWith("removed web: a"));
                CHECK_THAT(gc.out, Catch::Contains("was interrupted"));
            }
        }
        CHECK(diff_lines(before, lab.snapshot()) == "");
        if (bystander) CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    }
}

TEST_CASE("gc removes the containers whose namespace is gone, and says what it removed",
          "[recovery]") {
    Lab lab(1);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    lab.up(db, {"9090:80"});
    const int web_proxy = *lab.proxy_pid("web");
    lab.remove_container("web");

    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    // The kernel takes the veth away with the namespace, in the background,
    // and the proxy stops by itself within a tick (250 ms) of seeing it
    // gone: gc may come before or after either (under the sanitizers, after).
    CHECK_THAT(gc.out, Catch::Matches("removed web: namespace /run/netns/web is gone \\(record, "
                                      "(veth ppc6336402, )?4 map elements, (proxy pid " +
                                      std::to_string(web_proxy) + ", )?address 198.51.100.2\\)\n"));
    CHECK_FALSE(alive(web_proxy));
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    CHECK(lab.portpub({"check"}).status == 0);
    CHECK(lab.portpub({"gc"}).out == "nothing to remove\n");
    // web's address is free again.
    auto again = lab.container("again");
    CHECK_THAT(lab.up(again, {"8080:80"}, {"--json"}).out,
               Catch::Contains(R"("address":"198.51.100.2")"));
    REQUIRE(lab.portpub({"down", "--id", "again"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("gc removes proxies, map elements and veths that no record accounts for", "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(db, {"9090:80"});
    lab.up(web, kWebPorts);
    // Everything of web, and its record lost (deleted by hand, a disk
    // replaced): only the kernel knows.
    sh("rm " + lab.state_dir() + "/containers/web.json");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("map element tcp 0.0.0.0:8080 -> 198.51.100.3:80 is in "
                                          "no record (portpub gc removes it)"));
    CHECK_THAT(check.out, Catch::Contains("of web runs, but no record names it"));

    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("stopped proxy pid "));
    CHECK_THAT(gc.out,
               Catch::Contains("removed map element tcp 0.0.0.0:8080 -> 198.51.100.3:80: no record "
                               "holds it\n"));
    CHECK_THAT(gc.out, Catch::Contains("removed map element udp 0.0.0.0:5353 -> "));
    CHECK_THAT(gc.out, Catch::Contains("removed veth ppc6336403 on portpub0: no record holds it"));
    CHECK(proxies().size() == 1);
    CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    auto clean = lab.portpub({"check"});
    CHECK(clean.status == 0);
    INFO(clean.out);
    // The last record lost too: gc puts the host back as the last down would.
    sh("rm " + lab.state_dir() + "/containers/db.json");
    auto last = lab.portpub({"gc"});
    CHECK_THAT(last.out, Catch::Contains("removed table inet portpub: no record needs it\n"));
    CHECK_THAT(last.out, Catch::Contains("removed bridge portpub0: no record needs it\n"));
    CHECK_THAT(last.out, Catch::Contains("put ip_forward back to 0: no record needs it\n"));
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("check names what a ruleset flush removed, and restore brings the traffic back",
          "[recovery]") {
    const int nf = GENERATE(0, 1);
    if (nf == 1 && !Lab::has_bridge_netfilter()) return;
    Lab lab(nf);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    lab.up(db, {"9090:80"});
    REQUIRE(lab.portpub({"check"}).status == 0);

    sh("nft flush ruleset");  // what a firewalld reload or `nft -f` of a whole ruleset does
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("web: table inet portpub is missing\n"));
    CHECK_THAT(check.out, Catch::Contains("db: table inet portpub is missing\n"));
    CHECK_THAT(check.err, Catch::Contains("portpub restore re-creates what is missing"));

    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(
        restore.out,
        Catch::Contains("restored db: table inet portpub, 3 map elements, iptables accepts\n"));
    CHECK_THAT(restore.out, Catch::Contains("restored web: "));
    CHECK(lab.portpub({"check"}).out == "ok: 2 publications match the kernel\n");
    require_web_published(lab);
    CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    CHECK(lab.answering("db", kHostIp, 8080) == "web");  // container to container
    CHECK(lab.portpub({"restore"}).out == "nothing to restore\n");

    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("check names each piece removed by hand, and restore puts it back", "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);

    SECTION("a flushed chain") {
        sh("nft flush chain inet portpub prerouting");
        auto check = lab.portpub({"check", "--id", "web"});
        CHECK(check.status == 1);
        CHECK_THAT(
            check.out,
            Catch::Matches("chain prerouting of table inet portpub has 0 rules, not \\d+\n"));
    }
    SECTION("a map element") {
        sh("nft delete element inet portpub pub4 '{ tcp . 8080 }'");
        auto check = lab.portpub({"check"});
        CHECK(check.status == 1);
        CHECK(check.out == "web: map element tcp 0.0.0.0:8080 -> 198.51.100.2:80 is missing\n");
    }
    SECTION("the veth") {
        sh("ip link del ppc6336402");
        auto check = lab.portpub({"check"});
        CHECK(check.status == 1);
        CHECK(check.out == "web: veth ppc6336402 is missing\n");
    }
    SECTION("the bridge") {
        sh("ip link del portpub0");
        auto check = lab.portpub({"check"});
        CHECK(check.status == 1);
        CHECK(check.out ==
              "web: bridge portpub0 is missing\nweb: veth ppc6336402 is not on bridge portpub0\n");
    }
    // What `up` set in the kernel besides: each is seen, and put back.
    SECTION("ip_forward") {
        sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
        auto check = lab.portpub({"check"});
        CHECK(check.status == 1);
        CHECK(check.out == "web: ip_forward is 0, not 1\n");
    }
    SECTION("the host's end of the veth down") {
        sh("ip link set ppc6336402 down");
        CHECK(lab.portpub({"check"}).out == "web: veth ppc6336402 is down\n");
    }
    SECTION("hairpin mode off") {
        sh("ip link set ppc6336402 type bridge_slave hairpin off");
        CHECK(lab.portpub({"check"}).out == "web: veth ppc6336402 has hairpin mode off\n");
    }
    SECTION("the container's interface down") {
        sh("ip -n web link set eth0 down");
        CHECK(lab.portpub({"check"}).out ==
              "web: interface eth0 in /run/netns/web is down\n"
              "web: the default route via 198.51.100.1 in /run/netns/web is missing\n");
    }
    SECTION("the container's address flushed") {
        sh("ip -n web addr flush dev eth0");
        CHECK(lab.portpub({"check"}).out ==
              "web: address 198.51.100.2 of eth0 in /run/netns/web is missing\n"
              "web: the default route via 198.51.100.1 in /run/netns/web is missing\n");
    }
    SECTION("the container's loopback down") {
        sh("ip -n web link set lo down");
        CHECK(lab.portpub({"check"}).out == "web: lo in /run/netns/web is down\n");
    }
    SECTION("the proxy") {
        const int pid = *lab.proxy_pid("web");
        ::kill(pid, SIGKILL);
        wait_until("the killed proxy to exit", 2000, [&] { return !alive(pid); });
        auto check = lab.portpub({"check"});
        CHECK(check.status == 1);
        CHECK(check.out == "web: proxy (pid " + std::to_string(pid) + ") is not running\n");
        // Loopback is the kernel's; what the proxy served from elsewhere is gone.
        CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
        CHECK_FALSE(lab.tcp("ext", kHostIp6, 8080, 1000));
    }
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(restore.out, Catch::StartsWith("restored web: "));
    INFO(restore.out << restore.err);
    require_web_published(lab);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("restore does not make a second bridge beside one renamed by hand, and says so",
          "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    sh("ip link set portpub0 name renamed0");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::StartsWith("web: bridge portpub0 is missing\n"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 1);
    CHECK(restore.err ==
          "portpub restore: web: bridge portpub0 is missing, and subnet 198.51.100.0/24 is on "
          "interface renamed0 (renamed by hand?): name it portpub0 again, or remove it, and run "
          "restore again\n");
    CHECK(sh("ip -o link show portpub0 2>&1; true").find("does not exist") != std::string::npos);
    CHECK(sh("ip route show 198.51.100.0/24") ==
          "198.51.100.0/24 dev renamed0 proto kernel scope link src 198.51.100.1 \n");
    // down names the renamed bridge it leaves alone.
    auto down = lab.portpub({"down", "--id", "web"});
    CHECK(down.status == 0);
    CHECK_THAT(down.err, Catch::Contains("bridge portpub0 is gone, and interface renamed0 has its "
                                         "address 198.51.100.1/24 (renamed by hand?)"));
    sh("ip link del renamed0");
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("restore after the host end of a veth was renamed says how to put it back",
          "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    sh("ip link set ppc6336402 name renamed0");
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 1);
    CHECK_THAT(restore.err,
               Catch::Contains("veth ppc6336402 is missing, and eth0 in /run/netns/web is a veth "
                               "whose host end is renamed0 (renamed by hand?): name it "
                               "ppc6336402 again (ip link set renamed0 name ppc6336402)") &&
                   !Catch::Contains("--ifname"));
    sh("ip link set renamed0 name ppc6336402");
    CHECK(lab.portpub({"restore"}).status == 0);
    require_web_published(lab);
    // Both ends gone, and an interface of the container's own by that name:
    // not taken for portpub's, and no option that does not exist advised.
    sh("ip link del ppc6336402 && ip -n web link add eth0 type veth peer name eth1");
    auto other = lab.portpub({"restore"});
    CHECK(other.status == 1);
    CHECK_THAT(other.err, Catch::Contains("eth0 in /run/netns/web is an interface portpub did "
                                          "not make: remove it, or run portpub down and up"));
    sh("ip -n web link del eth0");
    CHECK(lab.portpub({"restore"}).status == 0);
    require_web_published(lab);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("check and restore see a container's IPv6 address and route removed", "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    lab.up(web, kWebPorts, {"--subnet6", "2001:db8:1::/64"});
    sh("ip -n web -6 addr del 2001:db8:1::2/64 dev eth0 && ip -n web -6 route del default");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK(check.out ==
          "web: address 2001:db8:1::2 of eth0 in /run/netns/web is missing\n"
          "web: the IPv6 default route via 2001:db8:1::1 in /run/netns/web is missing\n");
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK(restore.out ==
          "restored web: address 2001:db8:1::2 of eth0 in /run/netns/web, the IPv6 default route "
          "in /run/netns/web\n");
    require_web_published(lab, true);
    CHECK(lab.portpub({"check"}).status == 0);
}

TEST_CASE("check and restore name a container whose namespace is gone, gc removes it",
          "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    lab.remove_container("web");
    auto check = lab.portpub({"check", "--id", "web"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::StartsWith("web: namespace /run/netns/web is gone\n"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 1);
    CHECK_THAT(restore.err, Catch::Contains("portpub restore: web: namespace /run/netns/web is "
                                            "gone; portpub gc removes its record"));
    CHECK(lab.portpub({"check", "--id", "nosuch"}).err ==
          "portpub: nothing is published as nosuch; portpub ls lists what is\n");
    CHECK(lab.portpub({"gc"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE(
    "an up after a ruleset flush puts back the others' parts: their clients keep their "
    "address",
    "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    auto web = lab.container("web");
    auto db = lab.container("db");
    lab.up(web, kWebPorts);
    sh("nft flush ruleset");  // what nftables.service's restart does
    auto up = lab.up(db, {"9090:80"});
    CHECK_THAT(up.err, Catch::Contains("table inet portpub was gone: put back the parts of 1 "
                                       "other publication"));
    // web's client arrives with its own address: kernel DNAT, not the proxy.
    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply).at(0) == "web");
    CHECK(words(*reply).at(1) == kExtIp);
    auto dgram = lab.udp("ext", kHostIp, 5353);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(1) == kExtIp);
    CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    CHECK(lab.portpub({"check"}).status == 0);
}

TEST_CASE("an up puts back the accepts a firewall reload took from another bridge", "[recovery]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    lab.up(web, kWebPorts, {"--subnet", "198.51.100.0/25"});
    lab.up(db, {"9090:80"}, {"--bridge", "portpub1", "--subnet", "198.51.100.128/25"});
    // What an iptables-restore of rules saved before portpub came does.
    sh("iptables -F FORWARD && iptables -P FORWARD DROP");
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    auto again = lab.container("again");
    auto up = lab.up(again, {"7070:80"}, {"--bridge", "portpub1", "--subnet", "198.51.100.128/25"});
    CHECK_THAT(up.err, Catch::Contains("put back iptables accepts of bridge portpub0"));
    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply).at(1) == kExtIp);
    auto out = lab.tcp("web", kExtIp, 80);
    CHECK(out);
    CHECK(lab.portpub({"check"}).status == 0);
}
