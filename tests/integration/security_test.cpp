// What publishing must never open up: route_localnet, loopback mappings seen
// from outside, a mapping bound to one address reached through another, a
// container's unpublished ports, and paths built from ids a runtime hands in.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bridge_nf.hpp"
#include "lab.hpp"

using namespace lab;
using nlohmann::json;

namespace {

// Every line of route_localnet() whose value is not 0, or "".
std::string route_localnet_not_zero() {
    std::istringstream in(route_localnet());
    std::string bad;
    for (std::string line; std::getline(in, line);)
        if (line.size() < 2 || line.substr(line.size() - 2) != ":0") bad += line + "\n";
    return bad;
}

// Every file and directory under /run with its mode, but the files tests
// write to hand input to portpub.
std::string run_listing() {
    return sh(
        "find /run -xdev -printf '%p %m\\n' | grep -v -e '\\.cni-config\\.json ' "
        "-e '\\.oci-state\\.json ' | sort");
}

// `portpub oci-hook` with `state` on its stdin.
RunResult hook(const Lab& lab, const std::string& state) {
    const std::string path = lab.state_dir() + ".oci-state.json";
    std::ofstream(path) << state;
    return lab.portpub({"oci-hook"}, [path] {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ::dup2(fd, 0);
    });
}

// portpub as a CNI plugin with these CNI_* variables and `config` on stdin.
RunResult cni(const Lab& lab, const std::map<std::string, std::string>& vars,
              const std::string& config) {
    return lab.cni(vars, config);
}

// The permission bits of `path`, or -1 when it does not exist.
int mode_of(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
}

}  // namespace

TEST_CASE("publishing with the proxy leaves every route_localnet at 0", "[security]") {
    Lab lab(0);
    auto web = lab.container("web");
    REQUIRE(route_localnet_not_zero() == "");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80", "127.0.0.1:8081:81", "[::1]:8082:80", "8007:7/udp"});
    // Loopback served, by the proxy: kernel NAT would need route_localnet=1.
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK(lab.answering("host", "127.0.0.1", 8081) == "web");
    CHECK(lab.answering("host", "127.0.0.2", 8080) == "web");
    CHECK(lab.answering("host", "::1", 8082) == "web");
    auto dgram = lab.echo_udp("host", "127.0.0.1", 8007, "over loopback");
    REQUIRE(dgram);
    CHECK(*dgram == "over loopback");
    // During: all, default, lo, ext0, the bridge and the veth, each 0.
    const auto during = route_localnet();
    for (const char* name : {"all", "default", "lo", "ext0", "portpub0", "pp"})
        CHECK_THAT(during, Catch::Contains(std::string("/conf/") + name));
    CHECK(route_localnet_not_zero() == "");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(route_localnet_not_zero() == "");
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("a mapping bound to 127.0.0.1 or ::1 is unreachable from other hosts", "[security]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto other = lab.container("other");
    lab.up(web,
           {"127.0.0.1:8081:81", "127.0.0.1:5454:54/udp", "[::1]:8082:80", "[::1]:5455:53/udp"});
    lab.up(other, {"9090:80"});
    // Served on the host's loopback...
    CHECK(lab.answering("host", "127.0.0.1", 8081) == "web");
    CHECK(lab.answering("host", "::1", 8082) == "web");
    REQUIRE(lab.udp("host", "127.0.0.1", 5454));
    REQUIRE(lab.udp("host", "::1", 5455));
    // ...and through no address of the host, from another host or a container.
    for (const char* from : {"ext", "other"})
        for (const char* ip : {kHostIp, kHostIp2, kHostIp6, "198.51.100.1"}) {
            if (std::string(from) == "other" && std::string(ip) == kHostIp6) continue;
            INFO("from " << from << " to " << ip);
            CHECK_FALSE(lab.tcp(from, ip, 8081, 500));
            CHECK_FALSE(lab.tcp(from, ip, 8082, 500));
            CHECK_FALSE(lab.udp(from, ip, 5454, 500));
            CHECK_FALSE(lab.udp(from, ip, 5455, 500));
        }
    // A neighbour that routes 127.0.0.1 and ::1 to the host (CVE-2020-8558)
    // gets nothing either.
    sh("ip netns exec ext sysctl -qw net.ipv4.conf.all.route_localnet=1 "
       "net.ipv4.conf.eth0.route_localnet=1 && "
       "ip -n ext rule add pref 100 lookup local && ip -n ext rule del pref 0 lookup local && "
       "ip -n ext rule add to 127.0.0.1 lookup 100 pref 10 && "
       "ip -n ext route add 127.0.0.1 via 192.0.2.1 dev eth0 table 100 && "
       "ip -n ext -6 rule add pref 100 lookup local && ip -n ext -6 rule del pref 0 lookup local "
       "&& ip -n ext -6 rule add to ::1 lookup 100 pref 10 && "
       "ip -n ext -6 route add ::1 via 2001:db8::1 dev eth0 table 100");
    REQUIRE_THAT(sh("ip -n ext route get 127.0.0.1"), Catch::Contains("via 192.0.2.1 dev eth0"));
    REQUIRE_THAT(sh("ip -n ext -6 route get ::1"), Catch::Contains("via 2001:db8::1 dev eth0"));
    CHECK_FALSE(lab.tcp("ext", "127.0.0.1", 8081, 1000));
    CHECK_FALSE(lab.udp("ext", "127.0.0.1", 5454, 1000));
    CHECK_FALSE(lab.tcp("ext", "::1", 8082, 1000));
    CHECK_FALSE(lab.udp("ext", "::1", 5455, 1000));
    CHECK(route_localnet_not_zero() == "");
}

TEST_CASE("a mapping bound to one host address is unreachable through any other", "[security]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    sh("ip addr add 2001:db8::3/64 dev ext0 nodad");
    auto web = lab.container("web");
    auto other = lab.container("other");
    lab.up(web, {"192.0.2.1:8081:81", "192.0.2.1:5454:54/udp", "[2001:db8::1]:8083:80",
                 "[2001:db8::1]:5455:53/udp"});
    lab.up(other, {"9090:80"});
    CHECK(lab.answering("ext", kHostIp, 8081) == "web");
    CHECK(lab.answering("ext", kHostIp6, 8083) == "web");
    CHECK(lab.answering("other", kHostIp, 8081) == "web");
    REQUIRE(lab.udp("ext", kHostIp, 5454));
    REQUIRE(lab.udp("ext", kHostIp6, 5455));
    // 8081 is bound to 192.0.2.1, 8083 to 2001:db8::1: every other address
    // of the host, from another host, the host itself and a container.
    const std::pair<const char*, const char*> not_for_8081[] = {
        {"ext", kHostIp2},     {"ext", kHostIp6}, {"ext", "2001:db8::3"},    {"host", kHostIp2},
        {"host", "127.0.0.1"}, {"host", "::1"},   {"other", "198.51.100.1"}, {"other", kHostIp2},
    };
    for (const auto& [from, ip] : not_for_8081) {
        INFO("8081 from " << from << " to " << ip);
        CHECK_FALSE(lab.tcp(from, ip, 8081, 500));
        CHECK_FALSE(lab.udp(from, ip, 5454, 500));
    }
    const std::pair<const char*, const char*> not_for_8083[] = {
        {"ext", kHostIp},        {"ext", kHostIp2},     {"ext", "2001:db8::3"},
        {"host", kHostIp},       {"host", "127.0.0.1"}, {"host", "::1"},
        {"host", "2001:db8::3"}, {"other", kHostIp},    {"other", "198.51.100.1"},
    };
    for (const auto& [from, ip] : not_for_8083) {
        INFO("8083 from " << from << " to " << ip);
        CHECK_FALSE(lab.tcp(from, ip, 8083, 500));
        CHECK_FALSE(lab.udp(from, ip, 5455, 500));
    }
}

TEST_CASE("a container is reachable from outside only through its published ports", "[security]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    lab.watch = false;  // the chain flushed stays flushed
    lab.serve("ext");
    auto web = lab.container("web");
    lab.up(web, {"8080:80", "5353:53/udp"});
    // The other host routes the containers' subnet through this host.
    sh("ip -n ext route add 198.51.100.0/24 via 192.0.2.1");
    const std::string container = "198.51.100.2";
    // Unpublished ports (81, 54), and the published ones addressed directly.
    CHECK_FALSE(lab.tcp("ext", container, 81, 1000));
    CHECK_FALSE(lab.tcp("ext", container, 80, 1000));
    CHECK_FALSE(lab.udp("ext", container, 54, 1000));
    CHECK_FALSE(lab.udp("ext", container, 53, 1000));
    CHECK_FALSE(lab.tcp("ext", container, 7, 1000));
    // Through the host's address: served, the client's address intact.
    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply) == std::vector<std::string>{"web", kExtIp, "hello"});
    REQUIRE(lab.udp("ext", kHostIp, 5353));
    // The container's own connections out get their replies.
    auto out = lab.tcp("web", kExtIp, 80);
    REQUIRE(out);
    CHECK(words(*out).at(0) == "ext");
    REQUIRE(lab.udp("web", kExtIp, 53));
    // Hairpin still works.
    CHECK(lab.answering("web", kHostIp, 8080) == "web");
    // The route is real: without portpub's forward rule the container answers.
    sh("nft flush chain inet portpub forward");
    CHECK(lab.answering("ext", container, 81) == "web");
}

TEST_CASE("containers reach another network's containers only through published ports",
          "[security]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto a1 = lab.container("a1");
    auto a2 = lab.container("a2");
    auto b1 = lab.container("b1");
    // Two networks, as two `docker network create`s: 198.51.100.0/25 on
    // portpub0, 198.51.100.128/25 on ppb.
    lab.up(a1, {"8080:80"}, {"--subnet", "198.51.100.0/25"});
    lab.up(a2, {"8081:80"}, {"--subnet", "198.51.100.0/25"});
    lab.up(b1, {"9090:80"}, {"--subnet", "198.51.100.128/25", "--bridge", "ppb"});
    const std::string a1_ip = "198.51.100.2", a2_ip = "198.51.100.3", b1_ip = "198.51.100.130";
    // Within a network: every port, as on Docker's networks.
    CHECK(lab.answering("a2", a1_ip, 81) == "a1");
    CHECK(lab.answering("a1", a2_ip, 81) == "a2");
    REQUIRE(lab.udp("a2", a1_ip, 54));
    // Between networks: nothing directly, either way...
    CHECK_FALSE(lab.tcp("b1", a1_ip, 81, 1000));
    CHECK_FALSE(lab.tcp("b1", a1_ip, 80, 1000));
    CHECK_FALSE(lab.udp("b1", a1_ip, 54, 1000));
    CHECK_FALSE(lab.tcp("a1", b1_ip, 81, 1000));
    // ...but published ports, through a host address.
    CHECK(lab.answering("b1", kHostIp, 8080) == "a1");
    CHECK(lab.answering("a1", kHostIp, 9090) == "b1");
    CHECK(lab.answering("b1", "198.51.100.129", 8081) == "a2");
}

TEST_CASE("ids from a runtime that are not file names are refused, and nothing is written",
          "[security]") {
    Lab lab(0);
    auto web = lab.container("web");
    const int pid = lab.server_pid("web");
    const auto before = lab.snapshot();
    const auto files = run_listing();
    auto creating = [pid](const std::string& id_json) {
        return R"({"ociVersion":"1.0.2","id":)" + id_json + R"(,"status":"creating","pid":)" +
               std::to_string(pid) +
               R"(,"annotations":{"io.portpub.ports":"8080:80","io.portpub.subnet":"198.51.100.0/24"}})";
    };
    const std::pair<std::string, std::string> hook_cases[] = {
        {creating(R"("../../etc/x")"), "invalid container id '../../etc/x'"},
        {R"({"ociVersion":"1.0.2","id":"../../etc/x","status":"stopped"})",
         "invalid container id '../../etc/x'"},
        {creating(R"("a/b")"), "invalid container id 'a/b'"},
        {creating(R"("..")"), "invalid container id '..'"},
        {creating(R"("")"), "invalid container id ''"},
        {creating(R"("web\u0000x")"), "invalid container id 'web\\x00x'"},
        {creating(R"("web\nx")"), "invalid container id 'web\\x0ax'"},
        {creating('"' + std::string(129, 'a') + '"'), "use 1-128 letters"},
    };
    for (const auto& [state, message] : hook_cases) {
        INFO(state);
        auto r = hook(lab, state);
        INFO(r.err);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        CHECK_THAT(r.err, Catch::Contains(message));
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    json config = {
        {"cniVersion", "1.0.0"},
        {"name", "labnet"},
        {"type", "portpub"},
        {"subnet", kSubnet},
        {"stateDir", lab.state_dir()},
        {"runtimeConfig", {{"portMappings", {{{"hostPort", 8080}, {"containerPort", 80}}}}}}};
    auto vars = [&web](const std::string& id, const std::string& ifname = "eth0") {
        return std::map<std::string, std::string>{{"CNI_COMMAND", "ADD"},
                                                  {"CNI_CONTAINERID", id},
                                                  {"CNI_NETNS", web},
                                                  {"CNI_IFNAME", ifname}};
    };
    auto bad_name = config;
    bad_name["name"] = "../labnet";
    const std::tuple<std::map<std::string, std::string>, std::string, int, std::string>
        cni_cases[] = {
            {vars("c1/x"), config.dump(), 4, "CNI_CONTAINERID: invalid container id 'c1/x'"},
            {vars("../../etc/x"), config.dump(), 4, "invalid container id '../../etc/x'"},
            {vars(std::string(200, 'c')), config.dump(), 4, "(200 characters)"},
            {vars("c1", "../eth0"), config.dump(), 4, "invalid CNI_IFNAME '../eth0'"},
            {vars("c1"), bad_name.dump(), 7, "invalid network name '../labnet'"},
        };
    for (const auto& [env, conf, code, message] : cni_cases) {
        INFO(conf);
        auto r = cni(lab, env, conf);
        INFO(r.out << r.err);
        CHECK(r.status == 1);
        auto e = json::parse(r.out);
        CHECK(e["code"] == code);
        CHECK_THAT(e["msg"].get<std::string>(), Catch::Contains(message));
    }
    // Nothing written: not in the state directory, not beside it, not above it.
    CHECK(diff_lines(files, run_listing()) == "");
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK(mode_of(lab.state_dir() + "/../../etc/x.json") == -1);
    CHECK(mode_of(lab.state_dir() + "/../etc/x.json") == -1);
}

TEST_CASE("the state directory is 0700 and its files 0600, whatever the umask", "[security]") {
    Lab lab(0);
    auto web = lab.container("web");
    // A state directory whose parents are missing too.
    const std::string top = "/run/pp-perms", dir = top + "/a/b/state";
    auto portpub = [&](std::vector<std::string> args) {
        args.insert(args.begin(), PORTPUB_BIN);
        args.insert(args.end(), {"--state-dir", dir});
        return run(args, [] { ::umask(0); });
    };
    auto up =
        portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80", "-p", "5353:53/udp"});
    INFO(up.err);
    REQUIRE(up.status == 0);
    // Replaced once, so that a record written through its temporary file is seen too.
    REQUIRE(portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"}).status == 0);
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    CHECK(mode_of(top) == 0755);
    CHECK(mode_of(top + "/a") == 0755);
    CHECK(mode_of(top + "/a/b") == 0755);
    CHECK(mode_of(dir) == 0700);
    CHECK(mode_of(dir + "/containers") == 0700);
    CHECK(mode_of(dir + "/logs") == 0700);
    CHECK(mode_of(dir + "/lock") == 0600);
    CHECK(mode_of(dir + "/host.json") == 0600);
    CHECK(mode_of(dir + "/containers/web.json") == 0600);
    CHECK(mode_of(dir + "/logs/web.log") == 0600);
    CHECK(sh("find " + dir + " -perm /077") == "");  // nothing else either
    REQUIRE(portpub({"down", "--id", "web"}).status == 0);
    CHECK(sh("find " + dir + " -perm /077") == "");
}

TEST_CASE("a state directory others may write to is refused", "[security]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    const std::string open_dir = "/run/pp-open", foreign = "/run/pp-foreign";
    sh("mkdir -m 0777 " + open_dir + " && mkdir -m 0700 " + foreign + " && chown 65534 " + foreign);
    const std::pair<std::string, std::string> cases[] = {
        {open_dir, "state directory /run/pp-open may be written by other users (mode 0777)"},
        {foreign, "state directory /run/pp-foreign belongs to uid 65534"},
    };
    for (const auto& [dir, message] : cases) {
        auto r = run({PORTPUB_BIN, "up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80",
                      "--state-dir", dir});
        INFO(r.err);
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains(message) && Catch::Contains("--state-dir"));
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(sh("ls -A " + dir) == "");
        CHECK(diff_lines(before, lab.snapshot()) == "");
    }
}
