// Traffic through published ports, from everywhere a user expects it to work.
// Every case runs with net.bridge.bridge-nf-call-iptables at 0 and at 1.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "bridge_nf.hpp"
#include "lab.hpp"

using namespace lab;
using Words = std::vector<std::string>;

namespace {

// A TCP connection and a UDP datagram from `from` to ip:tcp_port and
// ip:udp_port are both answered by container `name`.
void check_reaches(Lab& lab, const std::string& from, const std::string& ip, int tcp_port,
                   int udp_port, const std::string& name) {
    INFO("from " << from << " to " << ip);
    CHECK(lab.answering(from, ip, tcp_port) == name);
    auto dgram = lab.udp(from, ip, udp_port);
    REQUIRE(dgram);
    CHECK(words(*dgram).at(0) == name);
}

}  // namespace

TEST_CASE("external clients reach published TCP and UDP ports and keep their address",
          "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    auto r = lab.up(web, {"8080:80", "5353:53/udp"});
    CHECK(r.out ==
          "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n53/udp -> 0.0.0.0:5353\n53/udp -> "
          "[::]:5353\n");

    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"web", kExtIp, "hello"});
    auto dgram = lab.udp("ext", kHostIp, 5353);
    REQUIRE(dgram);
    CHECK(words(*dgram) == Words{"web", kExtIp, "hello"});
    // Any host address serves a mapping without an address.
    CHECK(lab.tcp("ext", kHostIp2, 8080));
    // Ports that are not published stay closed, on the host and on the container.
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8081, 1000));
    CHECK_FALSE(lab.udp("ext", kHostIp, 5354, 1000));
}

TEST_CASE("the host reaches its own non-loopback addresses", "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    lab.up(web, {"8080:80", "5353:53/udp"});
    for (const char* ip : {kHostIp, kHostIp2, "198.51.100.1"})
        check_reaches(lab, "host", ip, 8080, 5353, "web");
}

TEST_CASE("a container reaches its own published port through a host address (hairpin)",
          "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    lab.up(web, {"8080:80", "5353:53/udp"});
    check_reaches(lab, "web", kHostIp, 8080, 5353, "web");
}

TEST_CASE("container B reaches container A's published port", "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"8080:80", "5353:53/udp"});
    lab.up(b, {"9090:80"});
    for (const char* ip : {kHostIp, "198.51.100.1"})
        check_reaches(lab, "b", ip, 8080, 5353, "a");
    // And the other way round.
    CHECK(lab.answering("a", kHostIp, 9090) == "b");
}

TEST_CASE("a port bound to one host address is not reachable through another", "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    auto web = lab.container("web");
    auto r = lab.up(web, {"192.0.2.1:8081:81", "192.0.2.1:5454:54/udp"});
    CHECK(r.out == "81/tcp -> 192.0.2.1:8081\n54/udp -> 192.0.2.1:5454\n");
    auto reply = lab.tcp("ext", kHostIp, 8081);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"web", kExtIp, "hello"});
    REQUIRE(lab.udp("ext", kHostIp, 5454));
    CHECK(lab.tcp("host", kHostIp, 8081));
    for (const char* from : {"ext", "host"}) {
        INFO("from " << from);
        CHECK_FALSE(lab.tcp(from, kHostIp2, 8081, 1000));
        CHECK_FALSE(lab.udp(from, kHostIp2, 5454, 1000));
    }
}

TEST_CASE("ranges, a port picked from a range and random ports", "[publish]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    lab.up(a, {"9000-9001:80-81"});
    for (int port : {9000, 9001}) {
        auto reply = lab.tcp("ext", kHostIp, port);
        REQUIRE(reply);
        CHECK(words(*reply) == Words{"a", kExtIp, "hello"});
    }

    // 9000 and 9001 are published: b gets 9002, and a random port for 81.
    auto r = lab.up(b, {"9000-9010:80", "81"}, {"--json"});
    CHECK_THAT(r.out, Catch::Contains(R"("host_port":9002)"));
    CHECK(lab.answering("ext", kHostIp, 9002) == "b");
    auto range = words(sh("cat /proc/sys/net/ipv4/ip_local_port_range"));
    auto random_port = [&] {
        auto json = lab.portpub({"ls", "--json"}).out;
        auto at = json.rfind(R"("container_port":81,"host_ip":"0.0.0.0","host_port":)");
        REQUIRE(at != std::string::npos);
        return std::stoi(json.substr(
            at + std::string(R"("container_port":81,"host_ip":"0.0.0.0","host_port":)").size()));
    }();
    CHECK(random_port >= std::stoi(range.at(0)));
    CHECK(random_port <= std::stoi(range.at(1)));
    auto reply = lab.tcp("ext", kHostIp, random_port);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"b", kExtIp, "hello"});
}

TEST_CASE("ls lists every container in docker ps style, and as JSON", "[publish]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    lab.up(web, {"8080:80", "5353:53/udp"});
    lab.up(db, {"192.0.2.1:6000-6001:80-81"});
    auto ls = lab.portpub({"ls"});
    REQUIRE(ls.status == 0);
    CHECK_THAT(ls.out,
               Catch::Contains("0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 0.0.0.0:5353->53/udp, "
                               "[::]:5353->53/udp"));
    CHECK_THAT(ls.out, Catch::Contains("192.0.2.1:6000-6001->80-81/tcp"));
    CHECK_THAT(ls.out, Catch::Contains("/run/netns/web"));
    CHECK_THAT(ls.out, Catch::StartsWith("ID "));
    auto json = lab.portpub({"ls", "--json"});
    CHECK_THAT(json.out, Catch::Contains(R"("id":"web")"));
    CHECK_THAT(json.out, Catch::Contains(R"("address":"198.51.100.2")"));
    CHECK_THAT(json.out, Catch::Contains(R"("bridge":"portpub0")"));
}

TEST_CASE("thousands of -p options are all published, in command-line order", "[publish]") {
    Lab lab(0);
    auto web = lab.container("web");
    std::vector<std::string> specs;
    for (int port = 20000; port < 23000; ++port)
        specs.push_back(std::to_string(port) + ":80");
    specs.push_back("5353:53/udp");
    auto r = lab.up(web, specs);
    // Each port on 0.0.0.0 and on [::]: "80/tcp -> 0.0.0.0:20000" is three words.
    auto all = words(r.out);
    std::vector<std::string> v4;
    for (std::size_t i = 2; i < all.size(); i += 3)
        if (all[i].rfind("0.0.0.0:", 0) == 0) v4.push_back(all[i].substr(8) + "/" + all[i - 2]);
    REQUIRE(all.size() == 3 * 2 * 3001);
    REQUIRE(v4.size() == 3001);
    CHECK(v4[0] == "20000/80/tcp");
    CHECK(v4[2999] == "22999/80/tcp");
    CHECK(v4[3000] == "5353/53/udp");
    CHECK(lab.answering("ext", kHostIp, 22999) == "web");
}

TEST_CASE("containers reach other hosts with the host's address", "[publish]") {
    int nf = bridge_nf_setting();
    if (nf < 0) return;
    INFO("bridge-nf-call-iptables=" << nf);
    Lab lab(nf);
    lab.serve("ext");  // a service on the other host
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    // Outbound traffic leaves masqueraded: the other host sees 192.0.2.1.
    auto reply = lab.tcp("web", kExtIp, 80);
    REQUIRE(reply);
    CHECK(words(*reply) == Words{"ext", kHostIp, "hello"});
    auto dgram = lab.udp("web", kExtIp, 53);
    REQUIRE(dgram);
    CHECK(words(*dgram) == Words{"ext", kHostIp, "hello"});
}

TEST_CASE("concurrent ups get distinct addresses and all serve", "[publish]") {
    Lab lab(0);
    constexpr int kContainers = 8;
    std::vector<std::string> paths;
    for (int i = 0; i < kContainers; ++i)
        paths.push_back(lab.container("c" + std::to_string(i)));
    std::vector<pid_t> pids;
    for (int i = 0; i < kContainers; ++i) {
        pid_t pid = ::fork();
        if (pid == 0) {
            auto r = lab.portpub({"up", "--netns", paths[i], "--subnet", kSubnet, "-p",
                                  std::to_string(7000 + i) + ":80"});
            ::_exit(r.status);
        }
        pids.push_back(pid);
    }
    for (pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    auto json = lab.portpub({"ls", "--json"}).out;
    std::set<std::string> addresses;
    for (auto at = json.find(R"("address":")"); at != std::string::npos;
         at = json.find(R"("address":")", at + 1))
        addresses.insert(json.substr(at + 11, json.find('"', at + 11) - at - 11));
    CHECK(addresses.size() == kContainers);
    for (int i = 0; i < kContainers; ++i) {
        CHECK(lab.answering("ext", kHostIp, 7000 + i) == "c" + std::to_string(i));
    }
}

TEST_CASE("the command line: help, version, JSON, stray words", "[cli]") {
    Lab lab(0);
    for (const char* command : {"up", "down", "ls", "version"}) {
        INFO(command);
        auto r = run({PORTPUB_BIN, command, "--help"});
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::StartsWith(std::string("Usage: portpub ")));
        CHECK_THAT(r.out, Catch::Contains("Example:"));
    }
    auto version = run({PORTPUB_BIN, "version"});
    CHECK(version.status == 0);
    CHECK_THAT(version.out, Catch::Matches("portpub [0-9]+\\.[0-9]+\\.[0-9]+\n"));
    auto stray = lab.portpub({"up", "8080:80", "--netns", "/run/netns/x"});
    CHECK(stray.status == 2);
    CHECK_THAT(stray.err, Catch::Contains("every port spec needs its own -p"));
    auto web = lab.container("web");
    // Every spelling of -p, kept in command-line order.
    auto r = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80",
                          "-p5353:53/udp", "--json", "--publish=9090:81"});
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["id"] == "web");
    CHECK(j["address"] == "198.51.100.2");
    CHECK(j["bridge"] == "portpub0");
    CHECK(j["gateway"] == "198.51.100.1");
    CHECK(j["netns"] == "/run/netns/web");
    CHECK(j["proxy"]["pid"].get<int>() > 0);
    std::vector<std::string> seen;
    for (const auto& m : j["mappings"])
        seen.push_back(m["host_ip"].get<std::string>() + ":" +
                       std::to_string(m["host_port"].get<int>()) + "->" +
                       std::to_string(m["container_port"].get<int>()) + "/" +
                       m["protocol"].get<std::string>());
    CHECK(seen == std::vector<std::string>{"0.0.0.0:8080->80/tcp", ":::8080->80/tcp",
                                           "0.0.0.0:5353->53/udp", ":::5353->53/udp",
                                           "0.0.0.0:9090->81/tcp", ":::9090->81/tcp"});
}
