// portpub beside the firewalls people run, each the real program inside the
// test's own namespaces: iptables-nft with a FORWARD drop policy (set before
// and after up), ufw enabled with its defaults, iptables-legacy, another
// nftables table that drops. In each: a client outside reaches the published
// port and keeps its address, containers reach outside, hairpin, container to
// container, 127.0.0.1, a container's own address stays closed, iptables-save
// parses, and after the last down the firewall is as it was. With --firewall
// none, up and check say what is dropped.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "lab.hpp"
#include "runtimes.hpp"

using namespace lab;
using lab::runtimes::Docker;
using lab::runtimes::fetch;

namespace {

const std::vector<std::string> kWebPorts{"8080:80", "5353:53/udp"};
constexpr const char* kWebAddress = "198.51.100.2";
constexpr const char* kDbAddress = "198.51.100.3";

// iptables-save of both families as a user compares it: no counters (the
// chains' too), no timestamps. Fails the test when iptables-nft calls a
// table incompatible.
std::string iptables_rules() {
    auto r = run({"sh", "-c", "iptables-save && ip6tables-save"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("incompatible") == std::string::npos);
    std::string out;
    std::size_t start = 0;
    while (start < r.out.size()) {
        auto end = r.out.find('\n', start);
        if (end == std::string::npos) end = r.out.size();
        auto line = r.out.substr(start, end - start);
        if (line.rfind(":", 0) == 0) line = line.substr(0, line.rfind(" ["));
        if (line.rfind("#", 0) != 0) out += line + "\n";
        start = end + 1;
    }
    return out;
}

// Every path a user of web and db tries.
void require_every_path(Lab& lab) {
    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply).at(0) == "web");
    CHECK(words(*reply).at(1) == kExtIp);  // the client's own address arrives
    auto dgram = lab.udp("ext", kHostIp, 5353);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(1) == kExtIp);
    auto out = lab.tcp("web", kExtIp, 80);  // outbound, masqueraded
    REQUIRE(out);
    CHECK(words(*out).at(0) == "ext");
    CHECK(lab.answering("db", kHostIp, 8080) == "web");    // hairpin
    CHECK(lab.answering("db", kWebAddress, 80) == "web");  // container to container
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    // A container's own address stays closed to direct access from outside.
    CHECK_FALSE(lab.tcp("ext", kWebAddress, 80, 1000));
}

void require_dropped(Lab& lab) {
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    CHECK_FALSE(lab.tcp("web", kExtIp, 80, 1000));
}

// A tmpfs copy of a configuration folder, over it in this test's own mount
// namespace: what a program writes there goes with this object.
class TmpfsCopy {
  public:
    explicit TmpfsCopy(std::string dir) : dir_(std::move(dir)) {
        sh("d=$(mktemp -d) && cp -a " + dir_ + "/. $d/ && mount -t tmpfs portpub-test " + dir_ +
           " && cp -a $d/. " + dir_ + "/ && rm -rf $d");
    }
    ~TmpfsCopy() { run({"umount", dir_}); }
    TmpfsCopy(const TmpfsCopy&) = delete;
    TmpfsCopy& operator=(const TmpfsCopy&) = delete;

  private:
    std::string dir_;
};

// ufw as Debian installs it, enabled with its defaults, its files on a tmpfs
// copy that goes with the returned object.
std::unique_ptr<TmpfsCopy> enable_ufw() {
    auto files = std::make_unique<TmpfsCopy>("/etc/ufw");
    sh("ufw --force enable >/dev/null && ufw allow 8080/tcp >/dev/null");
    return files;
}

// A system bus of this test's own (its /run is private); it ends with the lab.
void start_system_bus(Lab& lab) {
    // A socket left by an earlier test of this process (its bus was killed).
    sh("mkdir -p /run/dbus && rm -f /run/dbus/system_bus_socket");
    lab.spawn("host", {"dbus-daemon", "--system", "--nofork", "--nopidfile"});
    wait_until("the test's own system bus", 5000,
               [] { return ::access("/run/dbus/system_bus_socket", F_OK) == 0; });
}

// firewalld as Debian installs it, on the test's own system bus, with its
// configuration on a tmpfs copy that goes with the returned object; it ends
// with the lab.
std::unique_ptr<TmpfsCopy> start_firewalld(Lab& lab) {
    auto files = std::make_unique<TmpfsCopy>("/etc/firewalld");
    start_system_bus(lab);
    lab.spawn("host", {"firewalld", "--nofork", "--nopid", "--log-target", "console"});
    wait_until("firewalld on that bus", 20000, [] {
        return run({"firewall-cmd", "--state"}).status == 0;
    });
    return files;
}

std::string zone_of(const std::string& interface) {
    auto r = run({"firewall-cmd", "--get-zone-of-interface=" + interface});
    return r.status == 0 ? r.out : "(none)";
}

}  // namespace

TEST_CASE("published beside a firewall that drops: every path works, and down leaves it as it was",
          "[firewalls]") {
    const std::string host = GENERATE("iptables FORWARD DROP before up",
                                      "iptables FORWARD DROP after up", "ufw enabled");
    INFO(host);
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    std::unique_ptr<TmpfsCopy> ufw;
    if (host == "ufw enabled") ufw = enable_ufw();
    if (host == "iptables FORWARD DROP before up") sh("iptables -P FORWARD DROP");
    const auto before = lab.snapshot();
    const auto rules_before = iptables_rules();

    auto up = lab.up(web, kWebPorts);
    CHECK(up.err == "");  // nothing for the user to do
    lab.up(db, {"9090:80"});
    if (host == "iptables FORWARD DROP after up") sh("iptables -P FORWARD DROP");
    require_every_path(lab);
    const auto rules = iptables_rules();
    CHECK_THAT(rules, Catch::Contains("-A FORWARD -i portpub0 -m comment --comment \"portpub "
                                      "portpub0\" -j PORTPUB\n-A FORWARD -o portpub0 -m comment "
                                      "--comment \"portpub portpub0\" -j ACCEPT\n"));
    auto check = lab.portpub({"check"});
    CHECK(check.status == 0);
    INFO(check.out);

    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    if (host == "iptables FORWARD DROP after up") {
        // What iptables made for its policy stays; portpub's accepts went.
        CHECK_THAT(iptables_rules(),
                   Catch::Contains(":FORWARD DROP\n") && !Catch::Contains("portpub"));
        sh("iptables -P FORWARD ACCEPT && nft delete table ip filter");
    }
    CHECK(iptables_rules() == rules_before);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("on a host without iptables rules, portpub's accepts come and go with it",
          "[firewalls]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts, {"--subnet6", "2001:db8:1::/64"});
    // iptables' own table and chain, as iptables-nft makes them, with the accepts.
    CHECK(sh("iptables -S FORWARD") ==
          "-P FORWARD ACCEPT\n-A FORWARD -i portpub0 -m comment --comment \"portpub portpub0\" -j "
          "PORTPUB\n-A FORWARD -o portpub0 -m comment --comment \"portpub portpub0\" -j ACCEPT\n");
    // Out of the bridge, all but what other programs' bridges decide for themselves.
    CHECK(sh("iptables -S PORTPUB") ==
          "-N PORTPUB\n"
          "-A PORTPUB -o docker+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o br-+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o virbr+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o lxcbr+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o lxdbr+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o podman+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -o cni+ -m comment --comment portpub -j RETURN\n"
          "-A PORTPUB -m comment --comment portpub -j ACCEPT\n");
    CHECK_THAT(sh("ip6tables -S FORWARD"),
               Catch::Contains("-A FORWARD -i portpub0 -m comment --comment \"portpub portpub0\""));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("up --firewall none leaves iptables alone, and up and check say what it drops",
          "[firewalls]") {
    const std::string host = GENERATE("iptables FORWARD DROP", "ufw enabled");
    INFO(host);
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    std::unique_ptr<TmpfsCopy> ufw;
    if (host == "ufw enabled")
        ufw = enable_ufw();
    else
        sh("iptables -P FORWARD DROP");
    const auto rules_before = iptables_rules();
    auto up = lab.up(web, kWebPorts, {"--firewall", "none"});
    const std::string firewall = host == "ufw enabled" ? "ufw (iptables)" : "iptables";
    CHECK(up.err == "portpub: --firewall none: " + firewall +
                        ": chain FORWARD of table ip filter drops by default (policy drop), so "
                        "the traffic forwarded to and from bridge portpub0 is dropped; to let it "
                        "through, run: iptables -I FORWARD -i portpub0 -j ACCEPT; iptables -I "
                        "FORWARD -o portpub0 -j ACCEPT\n");
    CHECK(iptables_rules() == rules_before);
    require_dropped(lab);
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains(firewall + ": chain FORWARD of table ip filter drops") &&
                              Catch::Contains("(published with --firewall none)") &&
                              Catch::Contains("iptables -I FORWARD -i portpub0 -j ACCEPT"));
    // restore leaves it too; the commands up named let it through.
    CHECK(lab.portpub({"restore"}).status == 0);
    CHECK(iptables_rules() == rules_before);
    sh("iptables -I FORWARD -i portpub0 -j ACCEPT; iptables -I FORWARD -o portpub0 -j ACCEPT");
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    CHECK(lab.portpub({"check"}).status == 0);
}

TEST_CASE("check names a drop that came after up, and restore lets the traffic through again",
          "[firewalls]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    lab.up(web, kWebPorts);
    lab.up(db, {"9090:80"});
    // What an iptables-restore of rules saved before portpub came does.
    sh("iptables -F FORWARD && iptables -P FORWARD DROP");
    require_dropped(lab);
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out,
               Catch::Contains("iptables: chain FORWARD of table ip filter drops by default "
                               "(policy drop), so the traffic forwarded to and from bridge "
                               "portpub0 is dropped (portpub restore lets it through)"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(restore.out, Catch::Contains("iptables accepts"));
    require_every_path(lab);
    CHECK(lab.portpub({"check"}).status == 0);
    // Saved while they were there, restored after the last down: gc takes them.
    // A rule of the user's own that says "portpub" too: not portpub's.
    sh("iptables -A FORWARD -p tcp --dport 22 -m comment --comment 'portpub admin' -j ACCEPT");
    sh("iptables-save > /run/portpub-test-saved.rules");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    sh("iptables-restore < /run/portpub-test-saved.rules && rm /run/portpub-test-saved.rules");
    CHECK_THAT(sh("iptables -S FORWARD"), Catch::Contains("portpub portpub0"));
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("removed portpub's accepts for bridge portpub0 from "
                                       "iptables' FORWARD chain: no record needs them"));
    CHECK(sh("iptables -S FORWARD") ==
          "-P FORWARD DROP\n-A FORWARD -p tcp -m tcp --dport 22 -m comment --comment \"portpub "
          "admin\" -j ACCEPT\n");
}

TEST_CASE("iptables-legacy and other nftables tables: up names the drop and the commands",
          "[firewalls]") {
    const std::string host = GENERATE("iptables-legacy FORWARD DROP", "nftables forward drop");
    INFO(host);
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    std::string firewall, commands;
    if (host == "iptables-legacy FORWARD DROP") {
        sh("iptables-legacy -P FORWARD DROP");
        firewall = "iptables-legacy: chain FORWARD of table ip filter drops by default";
        commands =
            "iptables-legacy -I FORWARD -i portpub0 -j ACCEPT; iptables-legacy -I FORWARD -o "
            "portpub0 -j ACCEPT";
    } else {
        sh("nft add table inet guard && nft add chain inet guard screen '{ type filter hook "
           "forward "
           "priority 10; policy accept; }' && nft add rule inet guard screen counter drop");
        firewall = "nftables: chain screen of table inet guard ends with a rule that does drop";
        commands =
            "nft insert rule inet guard screen iifname \"portpub0\" accept; nft insert rule inet "
            "guard screen oifname \"portpub0\" accept";
    }
    auto up = lab.up(web, kWebPorts);
    CHECK_THAT(up.err, Catch::StartsWith("portpub: " + firewall) &&
                           Catch::EndsWith("; to let it through, run: " + commands + "\n"));
    require_dropped(lab);
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains(firewall) && Catch::Contains(commands));
    // The commands it named let the traffic through.
    sh(commands);
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    auto out = lab.tcp("web", kExtIp, 80);
    CHECK(out);
    CHECK(lab.portpub({"check"}).status == 0);
    if (host == "iptables-legacy FORWARD DROP") {
        // Prefixes (-i portpub+) let it through as well, and check sees that.
        sh("iptables-legacy -F FORWARD && iptables-legacy -I FORWARD -i portpub+ -j ACCEPT && "
           "iptables-legacy -I FORWARD -o portpub+ -j ACCEPT");
        CHECK(lab.answering("ext", kHostIp, 8080) == "web");
        CHECK(lab.portpub({"check"}).status == 0);
    }
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
}

TEST_CASE("beside firewalld: the bridge is in zone trusted at runtime, until its last down",
          "[firewalls]") {
    Lab lab(0);
    lab.watch = false;  // what a user sees and mends by hand
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto firewalld = start_firewalld(lab);
    const auto zones_before = sh("firewall-cmd --list-all-zones");
    const auto permanent_before = sh("firewall-cmd --permanent --list-all-zones");
    CHECK(lab.up(web, kWebPorts).err == "");
    lab.up(db, {"9090:80"});
    CHECK(zone_of("portpub0") == "trusted\n");
    require_every_path(lab);
    CHECK(lab.portpub({"check"}).status == 0);
    // Never a permanent change.
    CHECK(sh("firewall-cmd --permanent --list-all-zones") == permanent_before);

    // A reload forgets runtime bindings: check names it, restore binds it again.
    sh("firewall-cmd --reload");
    CHECK(zone_of("portpub0") == "(none)");
    CHECK_FALSE(lab.tcp("web", kExtIp, 80, 1000));
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("firewalld: bridge portpub0 is in no zone, so firewalld "
                                          "rejects the containers' outbound traffic (portpub "
                                          "restore lets it through)"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 0);
    CHECK_THAT(restore.out, Catch::Contains("firewalld zone trusted"));
    require_every_path(lab);

    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(zone_of("portpub0") == "trusted\n");  // db still needs it
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(zone_of("portpub0") == "(none)");
    CHECK(sh("firewall-cmd --list-all-zones") == zones_before);
}

TEST_CASE("beside firewalld with --firewall none: up and check say the way out is rejected",
          "[firewalls]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    const auto firewalld = start_firewalld(lab);
    auto up = lab.up(web, kWebPorts, {"--firewall", "none"});
    CHECK(up.err ==
          "portpub: --firewall none: firewalld: bridge portpub0 is in no zone, so firewalld "
          "rejects the containers' outbound traffic; to let it through, run: firewall-cmd "
          "--zone=trusted --add-interface=portpub0\n");
    CHECK(zone_of("portpub0") == "(none)");
    CHECK_FALSE(lab.tcp("web", kExtIp, 80, 1000));
    // firewalld's own `ct status dnat accept` lets the published port through.
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("(published with --firewall none)"));
    sh("firewall-cmd --zone=trusted --add-interface=portpub0");
    CHECK(lab.tcp("web", kExtIp, 80));
    CHECK(lab.portpub({"check"}).status == 0);
}

TEST_CASE("beside a real dockerd: portpub's and Docker's published ports both work",
          "[firewalls][docker]") {
    const bool docker_first = GENERATE(true, false);
    INFO((docker_first ? "dockerd started before up" : "dockerd started after up"));
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    std::optional<Docker> docker;
    if (docker_first) {
        docker.emplace(lab);
        docker->run_httpd("8081:80");
        // Docker drops what it does not forward itself when it turned forwarding on.
        CHECK_THAT(sh("iptables -S FORWARD"), Catch::Contains("-P FORWARD DROP"));
    }
    const auto rules_before = iptables_rules();
    CHECK(lab.up(web, kWebPorts).err == "");
    lab.up(db, {"9090:80"});
    if (!docker_first) {
        docker.emplace(lab);
        docker->run_httpd("8081:80");
    }
    require_every_path(lab);
    CHECK(lab.portpub({"check"}).status == 0);
    // Docker's own port, from outside, from loopback (docker-proxy) and from
    // portpub's containers; a port Docker did not publish stays closed to them:
    // traffic out to Docker's bridge is Docker's to decide.
    CHECK(fetch("ext", kHostIp, 8081) == "docker\n");
    CHECK(fetch("host", "127.0.0.1", 8081) == "docker\n");
    CHECK(fetch("web", kHostIp, 8081) == "docker\n");
    const auto hidden = docker->run_httpd("").out;
    const auto hidden_ip = docker->address(hidden.substr(0, hidden.find('\n')));
    CHECK(fetch("host", hidden_ip, 80) == "docker\n");  // it serves
    // (A dockerd that found forwarding on sets no drop policy: its unpublished
    // ports are then open to every forwarded client, portpub's or not.)
    if (docker_first)
        CHECK(run({"ip", "netns", "exec", "web", "curl", "-s", "--max-time", "2",
                   "http://" + hidden_ip + "/"})
                  .status != 0);
    iptables_rules();  // iptables-save parses

    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    auto down = lab.portpub({"down", "--id", "db"});
    REQUIRE(down.status == 0);
    // Docker's port keeps working: its accepts, and forwarding, stay.
    CHECK(fetch("ext", kHostIp, 8081) == "docker\n");
    CHECK(sh("cat /proc/sys/net/ipv4/ip_forward") == "1\n");
    CHECK_THAT(sh("iptables-save"), !Catch::Contains("portpub"));
    if (docker_first) CHECK(iptables_rules() == rules_before);
}

TEST_CASE("beside a real dockerd with --firewall none: up and check name Docker's drop",
          "[firewalls][docker]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    Docker docker(lab);
    docker.run_httpd("8081:80");
    auto up = lab.up(web, kWebPorts, {"--firewall", "none"});
    CHECK_THAT(up.err,
               Catch::StartsWith("portpub: --firewall none: Docker (iptables): chain FORWARD of "
                                 "table ip filter drops by default (policy drop)"));
    require_dropped(lab);
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains("Docker (iptables): chain FORWARD") &&
                              Catch::Contains("iptables -I FORWARD -i portpub0 -j ACCEPT"));
    CHECK(fetch("ext", kHostIp, 8081) == "docker\n");
}

TEST_CASE("a firewalld with StrictForwardPorts=yes: up refuses, naming it, and changes nothing",
          "[firewalls]") {
    // firewalld 2.3's setting, which Debian 12's firewalld 1.3 has not: its
    // D-Bus API as portpub reads it, from tests/tools/fake_firewalld.cpp.
    Lab lab(0);
    auto web = lab.container("web");
    start_system_bus(lab);
    lab.spawn("host", {FAKE_FIREWALLD_BIN, "yes"});
    wait_until("the stand-in firewalld on the bus", 5000, [] {
        return run({"busctl", "--system", "status", "org.fedoraproject.FirewallD1"}).status == 0;
    });
    const auto before = lab.snapshot();
    auto up = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"});
    CHECK(up.status == 1);
    CHECK(up.err ==
          "portpub: firewalld runs with StrictForwardPorts=yes, which rejects traffic to "
          "published ports that firewalld did not forward itself: set StrictForwardPorts=no in "
          "/etc/firewalld/firewalld.conf and reload firewalld, or forward the ports with "
          "firewalld (then --firewall none)\n");
    CHECK(diff_lines(before, lab.snapshot()) == "");
    // --firewall none: the user forwards the ports with firewalld; up says what it drops.
    auto none = lab.up(web, {"8080:80"}, {"--firewall", "none"});
    CHECK_THAT(none.err, Catch::Contains("--firewall none: firewalld: StrictForwardPorts=yes"));
    CHECK(sh("busctl --system call org.fedoraproject.FirewallD1 /org/fedoraproject/FirewallD1 "
             "org.fedoraproject.FirewallD1.zone getZoneOfInterface s portpub0") == "s \"\"\n");
}

TEST_CASE("up, check and down while another program keeps changing a large ruleset",
          "[firewalls]") {
    // What a host with Docker or kube-proxy at work looks like to portpub's
    // reads: thousands of chains, and changes while they are listed.
    Lab lab(0);
    auto web = lab.container("web");
    sh("{ echo 'table inet churn {'; for i in $(seq 3000); do echo \"chain c$i { }\"; done; "
       "echo '}'; } > /run/portpub-test-churn.nft && nft -f /run/portpub-test-churn.nft");
    lab.spawn("host", {"sh", "-c",
                       "for i in $(seq 20000); do nft add chain inet churn x; "
                       "nft delete chain inet churn x; done"});
    for (int i = 0; i < 10; ++i) {
        auto up = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"});
        INFO(up.err);
        REQUIRE(up.status == 0);
        auto check = lab.portpub({"check"});
        INFO(check.out << check.err);
        CHECK(check.status == 0);
        auto down = lab.portpub({"down", "--id", "web"});
        INFO(down.err);
        REQUIRE(down.status == 0);
    }
}

TEST_CASE("the watcher up starts binds the bridge again after firewall-cmd --reload",
          "[firewalls][watch]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    const auto firewalld = start_firewalld(lab);
    lab.up(web, kWebPorts);
    REQUIRE(watchers().size() == 1);
    for (const char* reload : {"--reload", "--complete-reload"}) {
        INFO(reload);
        sh(std::string("firewall-cmd ") + reload);
        CHECK(eventually(5000, [] { return zone_of("portpub0") == "trusted\n"; }));
        CHECK(lab.tcp("web", kExtIp, 80));
        CHECK(lab.portpub({"check"}).status == 0);
    }
    INFO(sh("cat " + lab.state_dir() + "/watch.log"));
}

TEST_CASE("firewalld's Reloaded signal alone, with nftables untouched, makes the watcher mend",
          "[firewalls][watch]") {
    // The stand-in forgets its bindings and says Reloaded on SIGUSR1, and
    // changes nothing in nftables: only the D-Bus match can notice.
    Lab lab(0);
    auto web = lab.container("web");
    start_system_bus(lab);
    const int firewalld = lab.spawn("host", {FAKE_FIREWALLD_BIN, "no"});
    wait_until("the stand-in firewalld on the bus", 5000, [] {
        return run({"busctl", "--system", "status", "org.fedoraproject.FirewallD1"}).status == 0;
    });
    auto zone = [] {
        return sh(
            "busctl --system call org.fedoraproject.FirewallD1 "
            "/org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1.zone "
            "getZoneOfInterface s portpub0");
    };
    lab.up(web, kWebPorts);
    REQUIRE(zone() == "s \"trusted\"\n");
    const auto ruleset = sh("nft list ruleset");
    for (int round = 0; round < 3; ++round) {
        INFO("reload " << round);
        ::kill(firewalld, SIGUSR1);
        CHECK(eventually(2000, [&] { return zone() == "s \"trusted\"\n"; }));
    }
    CHECK(sh("nft list ruleset") == ruleset);
    CHECK_THAT(sh("cat " + lab.state_dir() + "/watch.log"),
               Catch::Contains("restored web: firewalld zone trusted"));
}

TEST_CASE("ufw reload with the watcher up starts: every path works after it",
          "[firewalls][watch]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto ufw = enable_ufw();
    lab.up(web, kWebPorts);
    lab.up(db, {"9090:80"});
    require_every_path(lab);
    for (int round = 0; round < 2; ++round) {
        INFO("ufw reload " << round);
        sh("ufw reload >/dev/null");
        CHECK(eventually(2000, [&] { return lab.portpub({"check"}).status == 0; }));
        require_every_path(lab);
    }
    // ufw disabled and enabled again: its chains made anew, FORWARD's policy drop back.
    sh("ufw --force disable >/dev/null && ufw --force enable >/dev/null");
    CHECK(eventually(2000, [&] { return lab.portpub({"check"}).status == 0; }));
    require_every_path(lab);
}
