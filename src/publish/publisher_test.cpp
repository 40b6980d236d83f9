// The publisher's order of steps and its undoing, on a host of fakes
// (fake_host.hpp) and a state directory in /tmp: no root, no kernel.
#include "portpub/publisher.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "fake_host.hpp"

using namespace portpub;
using portpub::test::FakeHost;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/portpub-publisher-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

UpRequest web_request() {
    UpRequest req;
    req.specs = {"8080:80", "5353:53/udp"};
    req.netns = "/run/netns/web";
    return req;
}

// A second container, db, publishing 9090.
UpRequest db_request() {
    auto req = web_request();
    req.specs = {"9090:80"};
    req.netns = "/run/netns/db";
    return req;
}

constexpr const char* kVeth = "pp0a4d0002";  // of 10.77.0.2, the first address of 10.77.0.0/16

// web and db published on a host of fakes.
struct TwoPublished {
    TempDir dir;
    FakeHost fake;
    Publisher publisher{dir.path, fake.host()};
    TwoPublished() {
        publisher.up(web_request());
        publisher.up(db_request());
    }
};

}  // namespace

TEST_CASE(
    "up writes its record first, then forwarding, bridge, accepts beside, veth, sockets, rules, "
    "proxy",
    "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    const auto record = dir.path / "containers/web.json";
    // Every change to the host comes after the record that names it.
    std::vector<std::string> without_record;
    fake.state.watch = [&](const std::string& call) {
        if (!fs::exists(record) && call != "foreign.read") without_record.push_back(call);
    };
    const auto pub = publisher.up(web_request());
    CHECK(without_record.empty());
    CHECK(fake.state.log == std::vector<std::string>{
                                "foreign.read",  // before anything changes
                                "sysctls.write net/ipv4/ip_forward=1",
                                "links.ensure_bridge portpub0",
                                "foreign.add_iptables_accepts ip portpub0",
                                std::string("links.create_container_link ") + kVeth,
                                "proxies.open_sockets web",
                                "firewall.apply +3 -0",  // 2 DNAT elements and a redirect
                                "conntrack.flush_udp",
                                "rewriter.default_cgroup",  // loopback rewriting
                                "rewriter.attach /sys/fs/cgroup",
                                "rewriter.add 4",  // two ports, 127.0.0.0/8 and ::1
                                "proxies.start web",
                            });
    CHECK(pub.phase == Publication::Phase::published);
    CHECK(pub.proxy->pid == 4242);
    const auto records = publisher.list();
    REQUIRE(records.usable.size() == 1);
    CHECK(records.usable[0] == pub);
}

TEST_CASE("a firewall that refuses the rules: up takes back every step, newest first",
          "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"firewall.apply"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: table inet portpub: injected failure of firewall.apply");
    const auto& log = fake.state.log;
    // The veth, then the bridge up made, then forwarding as it was.
    CHECK(fake.state.calls("links.delete_link") ==
          std::vector<std::string>{std::string("links.delete_link ") + kVeth,
                                   "links.delete_link portpub0"});
    CHECK(fake.state.at(std::string("links.delete_link ") + kVeth) <
          fake.state.at("links.delete_link portpub0"));
    CHECK(log.back() == "sysctls.write net/ipv4/ip_forward=0");
    CHECK(fake.links.type.empty());
    CHECK(fake.proxies.count() == 0);
    // No record, and a host state that names nothing.
    CHECK(publisher.list().usable.empty());
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
}

TEST_CASE("a proxy that fails to start: up takes its elements back out of the table",
          "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"proxies.start"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: proxy: injected failure of proxies.start");
    // The rules went in, then out again: the last container takes the table.
    CHECK(fake.state.calls("firewall.apply") ==
          std::vector<std::string>{"firewall.apply +3 -0", "firewall.apply drop +0 -0"});
    CHECK(fake.firewall.element_count() == 0);
    CHECK_FALSE(fake.firewall.table_exists());
    CHECK(fake.links.type.empty());
    CHECK(publisher.list().usable.empty());
}

TEST_CASE("a proxy that fails to start beside another container: only its elements go",
          "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    auto db = db_request();
    publisher.up(db);
    fake.state.log.clear();
    fake.state.fail = {"proxies.start"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: proxy: injected failure of proxies.start");
    CHECK(fake.state.calls("firewall.apply") ==
          std::vector<std::string>{"firewall.apply +3 -0", "firewall.apply +0 -3"});
    CHECK(fake.firewall.element_count() == 2);  // db's DNAT element and its redirect
    CHECK(fake.links.link_exists("portpub0"));  // db's bridge stays
}

TEST_CASE("a failure while undoing is part of the error up returns", "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"firewall.apply", "links.delete_link"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: table inet portpub: injected failure of firewall.apply; undoing "
                      "it failed too: injected failure of links.delete_link; injected failure "
                      "of links.delete_link");
}

TEST_CASE("an error of up names the step it came from", "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"links.ensure_bridge"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: bridge portpub0: injected failure of links.ensure_bridge");
    fake.state.fail = {"links.create_container_link"};
    CHECK_THROWS_WITH(
        publisher.up(web_request()),
        std::string("up web: veth ") + kVeth + ": injected failure of links.create_container_link");
}

TEST_CASE("down goes on past a link that is already gone, and removes the rest", "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    // The container went, and took its veth with it; the bridge was
    // deleted by hand too.
    fake.links.type.clear();
    fake.links.master.clear();
    fake.namespaces.gone.insert("/run/netns/web");
    fake.state.log.clear();
    DownRequest req;
    req.id = "web";
    const auto gone = publisher.down(req);
    REQUIRE(gone);
    CHECK(gone->id == "web");
    // The proxy first (its ports go with it), then the rules, the veth, the
    // bridge (both gone: deleting them is asked all the same, and nothing
    // stops there), and forwarding as it was.
    CHECK(fake.state.log == std::vector<std::string>{
                                "rewriter.remove 4",
                                "proxies.stop 4242",
                                "proxies.remove_log web",
                                "firewall.apply drop +0 -0",
                                "conntrack.flush_udp",
                                std::string("links.delete_link ") + kVeth,
                                "foreign.remove_iptables_accepts ip portpub0",
                                "foreign.remove_made ip table chain",
                                "links.delete_link portpub0",
                                "rewriter.detach",  // the last publication's
                                "sysctls.write net/ipv4/ip_forward=0",
                            });
    CHECK_FALSE(fake.rewriter.attached());
    CHECK(publisher.list().usable.empty());
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
    // Twice is fine.
    CHECK_FALSE(publisher.down(req));
}

TEST_CASE("an error of down names the step, and the record stays for the next down",
          "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    fake.state.fail = {"firewall.apply"};
    DownRequest req;
    req.id = "web";
    CHECK_THROWS_WITH(publisher.down(req),
                      "down web: table inet portpub: injected failure of firewall.apply");
    // Marked as being removed: the next command finishes the job.
    REQUIRE(publisher.list().usable.size() == 1);
    CHECK(publisher.list().usable[0].phase == Publication::Phase::removing);
    fake.state.fail.clear();
    CHECK(publisher.down(req));
    CHECK(publisher.list().usable.empty());
    CHECK(fake.links.type.empty());
}

TEST_CASE("the accepts beside portpub come with a bridge's first container and go with its last",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.foreign.forward_exists[0] = true;  // iptables' FORWARD, as Docker leaves it
    fake.foreign.policy_drop[0] = true;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    auto db = db_request();
    publisher.up(db);
    // Once for the bridge; nothing made, the chain was there.
    CHECK(fake.state.calls("foreign.add") ==
          std::vector<std::string>{"foreign.add_iptables_accepts ip portpub0"});
    CHECK(fake.foreign.accepts[0] == std::set<std::string>{"portpub0"});
    DownRequest req;
    req.id = "web";
    publisher.down(req);
    CHECK(fake.state.calls("foreign.remove").empty());  // db still needs them
    req.id = "db";
    publisher.down(req);
    CHECK(fake.state.calls("foreign.remove") ==
          std::vector<std::string>{"foreign.remove_iptables_accepts ip portpub0"});
    CHECK(fake.foreign.accepts[0].empty());
    CHECK(fake.foreign.forward_exists[0]);  // iptables' own chain stays
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
}

TEST_CASE("an up that fails takes its accepts and its firewalld zone back",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.foreign.firewalld.running = true;
    Publisher publisher(dir.path, fake.host());
    auto req = web_request();
    req.subnet6 = "fd00:77::/64";
    fake.state.fail = {"firewall.apply"};
    CHECK_THROWS(publisher.up(req));
    CHECK(fake.state.calls("foreign.add") ==
          std::vector<std::string>{"foreign.add_iptables_accepts ip portpub0",
                                   "foreign.add_iptables_accepts ip6 portpub0"});
    CHECK(fake.state.calls("foreign.bind") ==
          std::vector<std::string>{"foreign.bind_zone trusted portpub0"});
    // Undone newest first: the zone, then the accepts and what was made for them.
    CHECK(fake.state.calls("foreign.unbind") ==
          std::vector<std::string>{"foreign.unbind_zone trusted portpub0"});
    CHECK(fake.state.at("foreign.unbind_zone trusted portpub0") <
          fake.state.at("foreign.remove_iptables_accepts ip6 portpub0"));
    CHECK(fake.state.calls("foreign.remove_made") ==
          std::vector<std::string>{"foreign.remove_made ip6 table chain",
                                   "foreign.remove_made ip table chain"});
    CHECK(fake.foreign.accepts[0].empty());
    CHECK(fake.foreign.accepts[1].empty());
    CHECK(fake.foreign.firewalld.zone_of["portpub0"].empty());
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
}

TEST_CASE("firewalld with StrictForwardPorts=yes: up refuses before it changes anything",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.foreign.firewalld.running = true;
    fake.foreign.firewalld.strict_forward_ports = true;
    Publisher publisher(dir.path, fake.host());
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      Catch::Contains("StrictForwardPorts=yes") &&
                          Catch::Contains("set StrictForwardPorts=no in "
                                          "/etc/firewalld/firewalld.conf"));
    CHECK(fake.state.log == std::vector<std::string>{"foreign.read"});
    CHECK(publisher.list().usable.empty());
}

TEST_CASE("up --firewall none leaves the firewalls beside alone, and says what they drop",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.foreign.forward_exists[0] = true;
    fake.foreign.policy_drop[0] = true;
    fake.foreign.firewalld.running = true;
    Publisher publisher(dir.path, fake.host());
    auto req = web_request();
    req.pass_firewalls = false;
    const auto pub = publisher.up(req);
    CHECK_FALSE(pub.pass_firewalls);
    CHECK(fake.state.calls("foreign.add").empty());
    CHECK(fake.state.calls("foreign.bind").empty());
    const auto& notes = publisher.notes();
    REQUIRE(notes.size() == 2);
    CHECK(notes[0] ==
          "--firewall none: iptables: chain FORWARD of table ip filter drops by default (policy "
          "drop), so the traffic forwarded to and from bridge portpub0 is dropped; to let it "
          "through, run: iptables -I FORWARD -i portpub0 -j ACCEPT; iptables -I FORWARD -o "
          "portpub0 -j ACCEPT");
    CHECK(notes[1] ==
          "--firewall none: firewalld: bridge portpub0 is in no zone, so firewalld rejects the "
          "containers' outbound traffic; to let it through, run: firewall-cmd --zone=trusted "
          "--add-interface=portpub0");
    // check says so too, and restore leaves it.
    const auto differences = publisher.differences_from_records(std::nullopt);
    CHECK(differences.size() == 2);
    fake.state.log.clear();
    publisher.restore();
    CHECK(fake.state.calls("foreign.add").empty());
    CHECK(fake.state.calls("foreign.bind").empty());
}

TEST_CASE("check names a drop portpub's accepts no longer pass, and restore puts them back",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    CHECK(publisher.differences_from_records(std::nullopt).empty());
    // iptables -F FORWARD; iptables -P FORWARD DROP
    fake.foreign.accepts[0].clear();
    fake.foreign.policy_drop[0] = true;
    CHECK(publisher.differences_from_records(std::nullopt) ==
          std::vector<std::string>{
              "iptables: chain FORWARD of table ip filter drops by default (policy drop), so the "
              "traffic forwarded to and from bridge portpub0 is dropped (portpub restore lets it "
              "through)"});
    fake.state.log.clear();
    const auto restored = publisher.restore();
    CHECK(fake.state.calls("foreign.add") ==
          std::vector<std::string>{"foreign.add_iptables_accepts ip portpub0"});
    REQUIRE(restored.done.size() == 1);
    CHECK_THAT(restored.done[0], Catch::EndsWith("iptables accepts"));
    CHECK(publisher.differences_from_records(std::nullopt).empty());
}

TEST_CASE("the last down leaves forwarding on while another program's bridge has ports",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());  // turns ip_forward on: it was 0
    // dockerd started since, found forwarding on, and made docker0 with a container.
    fake.links.type["veth1234"] = "veth";
    fake.links.master["veth1234"] = "docker0";
    DownRequest req;
    req.id = "web";
    publisher.down(req);
    CHECK(fake.state.calls("sysctls.write").size() == 1);  // the up's, none since
    CHECK(publisher.notes() ==
          std::vector<std::string>{
              "left ip_forward at 1, not 0 as portpub found it: bridge docker0 has "
              "ports portpub did not make, and may need it"});
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
}

TEST_CASE("a bridge of another program that did without forwarding does not keep it on",
          "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.links.type["user1"] = "veth";
    fake.links.master["user1"] = "br-user";  // in use before portpub turned forwarding on
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    DownRequest req;
    req.id = "web";
    publisher.down(req);
    CHECK(fake.state.calls("sysctls.write").back() == "sysctls.write net/ipv4/ip_forward=0");
    CHECK(publisher.notes().empty());
}

TEST_CASE("up again for the same container keeps its accepts and zone", "[publisher][firewalls]") {
    TempDir dir;
    FakeHost fake;
    fake.foreign.forward_exists[0] = true;
    fake.foreign.policy_drop[0] = true;
    fake.foreign.firewalld.running = true;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());
    auto again = web_request();
    again.specs = {"9090:80"};
    publisher.up(again);  // the old one's teardown takes them, the new up puts them back
    CHECK(fake.foreign.accepts[0] == std::set<std::string>{"portpub0"});
    CHECK(fake.foreign.firewalld.zone_of["portpub0"] == "trusted");
    CHECK(publisher.differences_from_records(std::nullopt).empty());
}

TEST_CASE("an up after a ruleset flush puts back the others' elements in its batch",
          "[publisher]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    publisher.up(web_request());  // 2 DNAT elements and a redirect
    fake.firewall.flush();
    fake.foreign.accepts[0].clear();
    auto db = db_request();
    fake.state.log.clear();
    publisher.up(db);
    // One batch: db's 2 elements and web's 3.
    CHECK(fake.state.calls("firewall.apply") == std::vector<std::string>{"firewall.apply +5 -0"});
    CHECK(fake.firewall.element_count() == 5);
    CHECK(fake.foreign.accepts[0] == std::set<std::string>{"portpub0"});
    CHECK(publisher.notes() ==
          std::vector<std::string>{"table inet portpub was gone: put back the parts of 1 other "
                                   "publication"});
    CHECK(publisher.differences_from_records(std::nullopt).empty());
}

TEST_CASE("up starts the watcher, --no-watch does not, and a watcher that cannot start is a note",
          "[publisher][watch]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    auto quiet = web_request();
    quiet.watch = false;
    publisher.up(quiet);
    CHECK(fake.watchers.starts == 0);
    publisher.up(db_request());
    CHECK(fake.watchers.starts == 1);
    CHECK(fake.watchers.running);

    // A watcher that does not start leaves the publication as it is, and says so.
    TempDir other;
    FakeHost failing;
    failing.watchers.fail = true;
    Publisher second(other.path, failing.host());
    const auto pub = second.up(web_request());
    CHECK(pub.id == "web");
    CHECK(fs::exists(other.path / "containers/web.json"));
    REQUIRE(second.notes().size() == 1);
    CHECK_THAT(second.notes().front(),
               Catch::StartsWith("no watcher runs (injected failure of watchers.start)") &&
                   Catch::Contains("portpub restore"));
}

TEST_CASE("only the down and the gc that leave nothing published let the watcher go",
          "[publisher][watch]") {
    TwoPublished two;
    auto& [dir, fake, publisher] = two;
    DownRequest req;
    req.id = "web";
    REQUIRE(publisher.down(req));
    CHECK(fake.watchers.settles == 0);
    CHECK(fake.watchers.running);
    publisher.gc();  // db's namespace is there: gc leaves it
    CHECK(fake.watchers.settles == 0);
    fake.namespaces.gone.insert("/run/netns/db");
    CHECK_FALSE(publisher.gc().empty());
    CHECK(fake.watchers.settles == 1);
    CHECK_FALSE(fake.watchers.running);
    // A down that finds nothing, with nothing published, settles too: it
    // costs a look at a lock file, and a watcher left over goes.
    req.id = "db";
    CHECK_FALSE(publisher.down(req));
    CHECK(fake.watchers.settles == 2);
}

TEST_CASE("restore after a flush puts every publication back in one batch, or each alone",
          "[publisher][watch]") {
    TwoPublished two;
    auto& [dir, fake, publisher] = two;
    fake.firewall.flush();
    fake.state.log.clear();
    SECTION("one batch") {
        const auto restored = publisher.restore();
        // One transaction: no container is back before the other.
        CHECK(fake.state.calls("firewall.apply") ==
              std::vector<std::string>{"firewall.apply +5 -0"});
        CHECK(fake.firewall.element_count() == 5);
        CHECK(restored.done ==
              std::vector<std::string>{"restored db: table inet portpub, 2 map elements",
                                       "restored web: 3 map elements"});
        CHECK(publisher.differences_from_records(std::nullopt).empty());
        // Nothing missing: nothing said.
        CHECK(publisher.restore().done.empty());
    }
    SECTION("a batch that fails: each part alone, and the firewalls beside all the same") {
        fake.foreign.accepts[0].clear();  // an iptables reload took them too
        fake.state.fail.insert("firewall.apply");
        const auto restored = publisher.restore();
        // The batch, then db's part and web's part alone.
        CHECK(fake.state.calls("firewall.apply").size() == 3);
        CHECK(restored.failed ==
              std::vector<std::string>{"db: injected failure of firewall.apply",
                                       "web: injected failure of firewall.apply"});
        // The accepts do not depend on the table: they are back.
        CHECK(fake.foreign.accepts[0] == std::set<std::string>{"portpub0"});
    }
}

TEST_CASE(
    "loopback is rewritten by the kernel, and the programs go with the last publication "
    "that uses them",
    "[publisher][loopback]") {
    TwoPublished two;
    auto& fake = two.fake;
    CHECK(fake.rewriter.attached_at == "/sys/fs/cgroup");
    CHECK(fake.state.calls("rewriter.attach").size() == 1);  // the second found them attached
    CHECK(fake.rewriter.map.size() == 6);  // 8080, 5353 and 9090, on 127.0.0.0/8 and ::1
    for (const auto& p : two.publisher.list().usable)
        CHECK(p.rewrite);
    CHECK(two.publisher.differences_from_records(std::nullopt).empty());
    DownRequest req;
    req.id = "web";
    REQUIRE(two.publisher.down(req));
    CHECK(fake.rewriter.map.size() == 2);
    CHECK(fake.rewriter.attached());
    req.id = "db";
    REQUIRE(two.publisher.down(req));
    CHECK_FALSE(fake.rewriter.attached());
    CHECK_FALSE(fs::exists(two.dir.path / "host.json"));
}

TEST_CASE("where the programs cannot be attached, up falls back to the proxy with a note",
          "[publisher][loopback]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"rewriter.attach"};
    const auto pub = publisher.up(web_request());
    CHECK_FALSE(pub.rewrite);
    CHECK(pub.proxy);
    CHECK(publisher.notes() ==
          std::vector<std::string>{"the kernel cannot rewrite connections to loopback here "
                                   "(injected failure of rewriter.attach): the proxy serves "
                                   "127.0.0.1 and ::1 for web"});
    CHECK_FALSE(publisher.list().usable.at(0).rewrite);
    CHECK(fake.state.calls("rewriter.add").empty());
    // Nothing of the attempt is in the host state.
    CHECK(publisher.differences_from_records(std::nullopt).empty());
}

TEST_CASE("a failure to add the rewrites takes up back, the programs with it",
          "[publisher][loopback]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.state.fail = {"rewriter.add"};
    CHECK_THROWS_WITH(publisher.up(web_request()),
                      "up web: loopback rewriting: injected failure of rewriter.add");
    CHECK_FALSE(fake.rewriter.attached());
    CHECK(fake.rewriter.map.empty());
    CHECK(fake.state.at("rewriter.remove 4") < fake.state.at("rewriter.detach"));
    CHECK(publisher.list().usable.empty());
    CHECK_FALSE(fs::exists(dir.path / "host.json"));
}

TEST_CASE("up --loopback proxy leaves the programs alone, and gc removes rewrites no record holds",
          "[publisher][loopback]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    auto req = web_request();
    req.rewrite = false;
    CHECK_FALSE(publisher.up(req).rewrite);
    CHECK(fake.state.calls("rewriter.").empty());
    DownRequest down;
    down.id = "web";
    REQUIRE(publisher.down(down));
    CHECK(fake.state.calls("rewriter.").empty());
    // A record lost (deleted by hand, a disk replaced): only the kernel
    // knows of its rewrites, and gc takes them and the programs away.
    publisher.up(web_request());
    REQUIRE(fake.rewriter.map.size() == 4);
    fs::remove(dir.path / "containers/web.json");
    const auto check = publisher.differences_from_records(std::nullopt);
    CHECK(std::find(check.begin(), check.end(),
                    "loopback rewrite tcp 127.0.0.0/8:8080 -> 10.77.0.2:80 is in no record "
                    "(portpub gc removes it)") != check.end());
    CHECK(std::find(check.begin(), check.end(),
                    "the socket programs are attached, but no record needs them (portpub gc "
                    "detaches them)") != check.end());
    const auto gc = publisher.gc();
    CHECK(std::find(gc.begin(), gc.end(),
                    "removed loopback rewrite udp 127.0.0.0/8:5353 -> 10.77.0.2:53: no record "
                    "holds it") != gc.end());
    CHECK(std::find(gc.begin(), gc.end(), "detached the socket programs: no record needs them") !=
          gc.end());
    CHECK_FALSE(fake.rewriter.attached());
    CHECK(fake.rewriter.map.empty());
}

TEST_CASE("programs another namespace's portpub pinned are neither used nor detached",
          "[publisher][loopback]") {
    TempDir dir;
    FakeHost fake;
    Publisher publisher(dir.path, fake.host());
    fake.rewriter.attached_at = "/sys/fs/cgroup";  // pinned by someone else
    fake.rewriter.foreign = true;
    const auto pub = publisher.up(web_request());
    CHECK_FALSE(pub.rewrite);
    CHECK_THAT(publisher.notes().at(0), Catch::Contains("serve another network namespace"));
    DownRequest down;
    down.id = "web";
    REQUIRE(publisher.down(down));
    CHECK(fake.rewriter.attached());
    CHECK(fake.state.calls("rewriter.detach").empty());
    CHECK(publisher.gc() == std::vector<std::string>{});
    CHECK(fake.rewriter.attached());
}
