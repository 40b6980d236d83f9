// `portpub forward`: a port of the lab host forwarded to a program of the
// host (kernel redirect) or to another machine (a "remote" namespace whose
// only routes are its own subnets, so that replies return only through
// masquerade), from every place a user would try; the file as the truth
// (apply after a flushed ruleset, apply after editing it); bad input that
// changes nothing; ip_forward shared with the containers.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "lab.hpp"

using namespace lab;

namespace {

std::string config_path(const Lab& lab) {
    return lab.state_dir() + "/../etc/forwards.json";
}

RunResult forward(const Lab& lab, std::vector<std::string> args) {
    args.insert(args.begin(), "forward");
    args.push_back("--config");
    args.push_back(config_path(lab));
    return lab.portpub(std::move(args));
}

RunResult forward_ok(const Lab& lab, std::vector<std::string> args) {
    auto r = forward(lab, args);
    INFO("portpub forward: " << r.out << r.err);
    REQUIRE(r.status == 0);
    return r;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

// Waits (at most 2 s) until `ip`:`port` answers from `from`: a program
// spawned in the background listens a moment later.
void wait_serving(Lab& lab, const std::string& from, const std::string& ip, int port) {
    wait_until(ip + ":" + std::to_string(port) + " to answer in " + from, 2000,
               [&] { return lab.tcp(from, ip, port, 200).has_value(); });
}

// The program of the host that forwards send to: pp-echo "app" on 5000.
void start_app(Lab& lab) {
    lab.spawn("host", {ECHO_BIN, "app", "--tcp", "5000"});
    wait_serving(lab, "host", "127.0.0.1", 5000);
}

// Another machine with pp-echo "remote" on 3000.
void start_remote(Lab& lab) {
    lab.remote("remote");
    lab.spawn("remote", {ECHO_BIN, "remote", "--tcp", "3000"});
    wait_serving(lab, "host", kRemoteIp, 3000);
}

// The echo reply's first two words: who answered and whom it saw.
std::string who(Lab& lab, const std::string& from, const std::string& ip, int port) {
    auto reply = lab.tcp(from, ip, port, 1500);
    if (!reply) return "nothing";
    auto w = words(*reply);
    return w.size() >= 2 ? w[0] + " " + w[1] : *reply;
}

std::string sysctl(const std::string& key) {
    auto v = sh("cat /proc/sys/" + key);
    return v.substr(0, v.find('\n'));
}

bool route_localnet_off() {
    return route_localnet().find(":1\n") == std::string::npos;
}

}  // namespace

TEST_CASE("a local forward serves other hosts, the host's own addresses and loopback",
          "[forward]") {
    Lab lab;
    start_app(lab);
    CHECK(who(lab, "ext", kHostIp, 80) == "nothing");
    auto r = forward_ok(lab, {"-p", "80:5000/tcp"});
    CHECK(r.out == "80/tcp -> local port 5000\n");

    // The client's own address arrives: a redirect, no masquerade.
    CHECK(who(lab, "ext", kHostIp, 80) == "app 192.0.2.2");
    CHECK(who(lab, "ext", kHostIp6, 80) == "app 2001:db8::2");
    CHECK(who(lab, "ext", kHostIp2, 80) == "app 192.0.2.2");
    CHECK(who(lab, "host", kHostIp, 80).rfind("app ", 0) == 0);
    CHECK(who(lab, "host", kHostIp6, 80).rfind("app ", 0) == 0);
    CHECK(who(lab, "host", "127.0.0.1", 80) == "app 127.0.0.1");
    CHECK(who(lab, "host", "::1", 80) == "app ::1");
    CHECK(route_localnet_off());
    CHECK(sysctl("net/ipv4/ip_forward") == "0");  // nothing is routed
    CHECK(proxies().empty());                     // the kernel serves it all

    auto ls = forward_ok(lab, {"ls"});
    CHECK(ls.out == "80/tcp -> local port 5000\n");
    auto json = forward_ok(lab, {"ls", "--json"});
    CHECK(json.out == R"([{"active":true,"publish":"80:5000/tcp"}])"
                      "\n");
    CHECK(read_text(config_path(lab)).find(R"("publish": "80:5000/tcp")") != std::string::npos);
    // The same forward again is no second entry.
    forward_ok(lab, {"-p", "80:5000"});
    CHECK(forward_ok(lab, {"ls"}).out == "80/tcp -> local port 5000\n");
}

TEST_CASE("a remote forward reaches another machine and its replies return, IPv4 and IPv6",
          "[forward]") {
    Lab lab;
    start_remote(lab);
    forward_ok(lab, {"-p", "8080:3000", "--to", kRemoteIp});
    forward_ok(lab, {"-p", "8086:3000/tcp", "--to", kRemoteIp6});
    CHECK(sysctl("net/ipv4/ip_forward") == "1");
    CHECK(sysctl("net/ipv6/conf/all/forwarding") == "1");

    // The remote sees the host (masquerade): it has no route to ext.
    CHECK(who(lab, "ext", kHostIp, 8080) == "remote 198.51.100.1");
    CHECK(who(lab, "ext", kHostIp6, 8086) == "remote 2001:db8:1::1");
    CHECK(who(lab, "ext", kRemoteIp, 3000) == "nothing");  // routed, but no reply returns
    // The host itself, through its own address (output hook) ...
    CHECK(who(lab, "host", kHostIp, 8080) == "remote 198.51.100.1");
    CHECK(who(lab, "host", kHostIp6, 8086) == "remote 2001:db8:1::1");
    // ... and through loopback, by the forward proxy.
    CHECK(who(lab, "host", "127.0.0.1", 8080) == "remote 198.51.100.1");
    CHECK(who(lab, "host", "::1", 8080) == "remote 198.51.100.1");
    CHECK(who(lab, "host", "::1", 8086) == "remote 2001:db8:1::1");
    CHECK(route_localnet_off());
    CHECK(proxies().size() == 1);  // one process for every remote forward

    auto ls = forward_ok(lab, {"ls"});
    CHECK(ls.out ==
          "8080/tcp -> 198.51.100.2:3000\n"
          "8086/tcp -> [2001:db8:1::2]:3000\n");
}

TEST_CASE("forward apply restores every forward after the ruleset is flushed", "[forward]") {
    Lab lab;
    lab.watch = false;  // forward apply, not a watcher, restores
    start_app(lab);
    start_remote(lab);
    forward_ok(lab, {"-p", "80:5000", "-p", "81:5000"});
    forward_ok(lab, {"-p", "8080:3000", "--to", kRemoteIp});
    const auto proxy = proxies();
    REQUIRE(proxy.size() == 1);

    // What a reboot leaves: no ruleset, no proxy.
    sh("nft flush ruleset");
    ::kill(proxy[0], SIGKILL);
    wait_until("the killed proxy to exit", 2000, [&] { return !alive(proxy[0]); });
    CHECK(who(lab, "ext", kHostIp, 80) == "nothing");
    CHECK(who(lab, "ext", kHostIp, 8080) == "nothing");
    CHECK(who(lab, "host", "127.0.0.1", 8080) == "nothing");
    CHECK(forward_ok(lab, {"ls"}).out.find("not active") != std::string::npos);

    auto r = forward_ok(lab, {"apply"});
    CHECK(r.out ==
          "80/tcp -> local port 5000\n81/tcp -> local port 5000\n8080/tcp -> "
          "198.51.100.2:3000\n");
    CHECK(who(lab, "ext", kHostIp, 80) == "app 192.0.2.2");
    CHECK(who(lab, "ext", kHostIp, 81) == "app 192.0.2.2");
    CHECK(who(lab, "ext", kHostIp, 8080) == "remote 198.51.100.1");
    CHECK(who(lab, "host", "127.0.0.1", 8080) == "remote 198.51.100.1");
    CHECK(forward_ok(lab, {"ls"}).out.find("not active") == std::string::npos);
    // apply again changes nothing and keeps the running proxy.
    const auto again = proxies();
    forward_ok(lab, {"apply"});
    CHECK(proxies() == again);
}

TEST_CASE("apply removes what the file no longer lists and rm leaves nothing behind", "[forward]") {
    Lab lab;
    start_app(lab);
    start_remote(lab);
    const auto before = lab.snapshot();
    forward_ok(lab, {"-p", "80:5000"});
    forward_ok(lab, {"-p", "8080:3000", "-p", "8081:3000", "--to", kRemoteIp});
    CHECK(who(lab, "ext", kHostIp, 8081) == "remote 198.51.100.1");

    // The file edited by hand: only the local forward is left.
    write_text(config_path(lab), R"({"forwards": [{"publish": "80:5000/tcp"}]})");
    CHECK(forward_ok(lab, {"apply"}).out == "80/tcp -> local port 5000\n");
    CHECK(who(lab, "ext", kHostIp, 8080) == "nothing");
    CHECK(who(lab, "ext", kHostIp, 8081) == "nothing");
    CHECK(who(lab, "host", "127.0.0.1", 8080) == "nothing");
    CHECK(proxies().empty());
    CHECK(sysctl("net/ipv4/ip_forward") == "0");  // no remote forward needs it
    CHECK(who(lab, "ext", kHostIp, 80) == "app 192.0.2.2");

    auto missing = forward(lab, {"rm", "80:6000"});
    CHECK(missing.status == 1);
    CHECK(missing.err.find("no forward '80:6000/tcp' in") != std::string::npos);

    forward_ok(lab, {"rm", "80:5000/tcp"});
    CHECK(who(lab, "ext", kHostIp, 80) == "nothing");
    CHECK(who(lab, "host", "127.0.0.1", 80) == "nothing");
    CHECK(forward_ok(lab, {"ls"}).out.empty());
    CHECK(run({"nft", "list", "table", "inet", "portpub_forward"}).status != 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK(read_text(config_path(lab)) == "{\n  \"forwards\": []\n}\n");
}

TEST_CASE("bad forward input is refused in one line and changes nothing", "[forward]") {
    Lab lab;
    start_app(lab);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    forward_ok(lab, {"-p", "80:5000"});
    const auto before = lab.snapshot();
    const auto file = read_text(config_path(lab));

    auto refused = [&](std::vector<std::string> args, int status, const std::string& says) {
        auto r = forward(lab, args);
        INFO(r.err);
        CHECK(r.status == status);
        CHECK(r.err.find(says) != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(diff_lines(before, lab.snapshot()) == "");
        CHECK(read_text(config_path(lab)) == file);
    };
    refused({"-p", "5000"}, 2, "'5000': a forward needs a host port");
    refused({"-p", "81:5000", "--to", "db.example"}, 2, "'db.example'");
    // The host itself, and all of one of its networks, are no machine to forward to.
    refused({"-p", "81:5000", "--to", kHostIp2}, 1,
            "192.0.2.3 is an address of this host; for a program of this host leave --to out "
            "(-p 81:5000/tcp)");
    refused({"-p", "81:5000", "--to", "192.0.2.255"}, 1,
            "192.0.2.255 is the broadcast address of a network of this host");
    refused({"-p", "81:5000", "--to", "fe80::1"}, 2, "a link-local address");
    refused({"-p", "81:5000", "--to", "::ffff:192.0.2.2"}, 2, "write it as 192.0.2.2");
    refused({"-p", "8080:3000"}, 1, "host port 8080/tcp is already published by container web");
    refused({"-p", "80:6000"}, 1, "'80:5000/tcp' and '80:6000/tcp'");
    refused({"rm", "81:5000"}, 1, "no forward '81:5000/tcp'");

    // A program on the loopback port the proxy of a remote forward needs.
    lab.spawn("host", {ECHO_BIN, "squatter", "--tcp", "8090"});
    wait_serving(lab, "host", "127.0.0.1", 8090);
    refused({"-p", "8090:3000", "--to", "192.0.2.9"}, 1,
            "cannot listen on 127.0.0.1:8090 for the forward proxy: Address already in use");

    // A broken file: apply names the file and the entry, and keeps what is in force.
    write_text(config_path(lab), R"({"forwards": [{"publish": "80:5000"}, {"publish": "90"}]})");
    {
        auto r = forward(lab, {"apply"});
        CHECK(r.status == 1);
        CHECK(r.err.find("forwards.json', forward 2: invalid forward '90'") != std::string::npos);
        CHECK(diff_lines(before, lab.snapshot()) == "");
    }
    write_text(config_path(lab), file);

    // A container may not take a forwarded port either.
    auto db = lab.container("db");
    auto up = lab.portpub({"up", "--netns", db, "--subnet", kSubnet, "-p", "80:80"});
    CHECK(up.status == 1);
    CHECK(up.err.find("host port 80/tcp is in use on this host by portpub forward 80:5000/tcp "
                      "(to 127.0.0.1:5000") != std::string::npos);
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK(who(lab, "ext", kHostIp, 80) == "app 192.0.2.2");
}

TEST_CASE("ip_forward goes back once neither a remote forward nor a container needs it",
          "[forward]") {
    Lab lab;
    start_remote(lab);
    auto web = lab.container("web");
    const std::vector<std::string> up_web{"up",           "--netns", web,      "--subnet",
                                          "10.99.0.0/24", "-p",      "9090:80"};
    REQUIRE(sysctl("net/ipv4/ip_forward") == "0");

    // The forward first, then a container: rm of the forward leaves it on.
    forward_ok(lab, {"-p", "8080:3000", "--to", kRemoteIp});
    REQUIRE(lab.portpub(up_web).status == 0);
    forward_ok(lab, {"rm", "8080:3000", "--to", kRemoteIp});
    CHECK(sysctl("net/ipv4/ip_forward") == "1");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(sysctl("net/ipv4/ip_forward") == "0");

    // A container first, then the forward: down of the container leaves it on.
    REQUIRE(lab.portpub(up_web).status == 0);
    forward_ok(lab, {"-p", "8080:3000", "--to", kRemoteIp});
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(sysctl("net/ipv4/ip_forward") == "1");
    CHECK(who(lab, "ext", kHostIp, 8080) == "remote 198.51.100.1");
    forward_ok(lab, {"rm", "8080:3000", "--to", kRemoteIp});
    CHECK(sysctl("net/ipv4/ip_forward") == "0");

    // IPv6 forwarding likewise, for an IPv6 target.
    REQUIRE(sysctl("net/ipv6/conf/all/forwarding") == "0");
    forward_ok(lab, {"-p", "8086:3000", "--to", kRemoteIp6});
    CHECK(sysctl("net/ipv6/conf/all/forwarding") == "1");
    forward_ok(lab, {"rm", "8086:3000", "--to", kRemoteIp6});
    CHECK(sysctl("net/ipv6/conf/all/forwarding") == "0");
    CHECK(sh("ls " + lab.state_dir()).find("host.json") == std::string::npos);
}
