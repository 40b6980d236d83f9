// portpub run as a CNI plugin, the way a runtime (libcni) runs it: CNI_*
// variables, the network configuration on stdin, JSON on stdout.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "lab.hpp"

using namespace lab;
using nlohmann::json;

namespace {

constexpr const char* kCniPluginDir = "/usr/lib/cni";  // Debian's containernetworking-plugins

RunResult cni(const Lab& lab, const std::map<std::string, std::string>& vars,
              const std::string& config) {
    return lab.cni(vars, config);
}

RunResult cni_run(const Lab& lab, const std::string& program,
                  const std::map<std::string, std::string>& vars, const std::string& config) {
    return lab.cni(vars, config, program);
}

std::map<std::string, std::string> vars(const std::string& command, const std::string& id,
                                        const std::string& netns) {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", id},
            {"CNI_NETNS", netns},
            {"CNI_IFNAME", "eth0"},
            {"CNI_PATH", kCniPluginDir}};
}

// A network configuration of portpub as the main plugin, with the port
// mappings a runtime puts in runtimeConfig.
json main_config(const Lab& lab, const json& mappings) {
    return {{"cniVersion", "1.0.0"},
            {"name", "labnet"},
            {"type", "portpub"},
            {"bridge", "pp1"},
            {"subnet", kSubnet},
            {"stateDir", lab.state_dir()},
            {"runtimeConfig", {{"portMappings", mappings}}}};
}

json mapping(int host, int container, const std::string& proto = "tcp") {
    return {{"hostPort", host}, {"containerPort", container}, {"protocol", proto}};
}

// The error JSON on stdout of a failed run.
json error_of(const RunResult& r) {
    INFO(r.out << r.err);
    REQUIRE(r.status != 0);
    auto j = json::parse(r.out);
    REQUIRE(j.contains("code"));
    REQUIRE(j.contains("msg"));
    return j;
}

}  // namespace

TEST_CASE("CNI main plugin: ADD makes the link and publishes, DEL removes everything", "[cni]") {
    Lab lab(0);
    const auto netns = lab.container("c1");
    const auto before = lab.snapshot();
    auto config = main_config(lab, {mapping(8080, 80), mapping(5353, 53, "udp")});

    auto add = cni(lab, vars("ADD", "c1", netns), config.dump());
    INFO(add.err);
    REQUIRE(add.status == 0);
    auto result = json::parse(add.out);
    CHECK(result["cniVersion"] == "1.0.0");
    REQUIRE(result["interfaces"].size() == 3);
    CHECK(result["interfaces"][0]["name"] == "pp1");
    CHECK(result["interfaces"][2]["name"] == "eth0");
    CHECK(result["interfaces"][2]["sandbox"] == netns);
    const std::string address = result["ips"][0]["address"];
    CHECK_THAT(address, Catch::StartsWith("198.51.100.") && Catch::EndsWith("/24"));
    CHECK(result["ips"][0]["gateway"] == "198.51.100.1");
    // The address the result gives is the container's.
    CHECK_THAT(sh("ip -n c1 -4 -o addr show eth0"), Catch::Contains(address));
    CHECK_THAT(sh("ip -n c1 -o link show eth0"),
               Catch::Contains(result["interfaces"][2]["mac"].get<std::string>()));

    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply).at(0) == "c1");
    CHECK(words(*reply).at(1) == kExtIp);  // the client's address, intact
    CHECK(lab.udp("ext", kHostIp, 5353));
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "c1");
    // CHECK with the result as prevResult: all there.
    auto check_config = config;
    check_config["prevResult"] = result;
    auto check = cni(lab, vars("CHECK", "c1", netns), check_config.dump());
    CHECK(check.status == 0);
    CHECK(check.out.empty());

    auto del = cni(lab, vars("DEL", "c1", netns), check_config.dump());
    INFO(del.out);
    CHECK(del.status == 0);
    CHECK(del.out.empty());
    CHECK(lab.snapshot() == before);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 500));
    // DEL again, and DEL once the namespace is gone (no CNI_NETNS): nothing to do.
    CHECK(cni(lab, vars("DEL", "c1", netns), check_config.dump()).status == 0);
    lab.remove_container("c1");
    CHECK(cni(lab, vars("DEL", "c1", ""), check_config.dump()).status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("CNI DEL after the namespace is gone removes the publication", "[cni]") {
    Lab lab(0);
    const auto netns = lab.container("c1");
    const auto before = lab.snapshot();
    auto config = main_config(lab, json::array({mapping(8080, 80)}));
    REQUIRE(cni(lab, vars("ADD", "c1", netns), config.dump()).status == 0);
    lab.remove_container("c1");
    auto del = cni(lab, vars("DEL", "c1", netns), config.dump());
    INFO(del.out);
    CHECK(del.status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("CNI CHECK fails naming what is missing: rule, veth or proxy", "[cni]") {
    Lab lab(0);
    const auto netns = lab.container("c1");
    auto config = main_config(lab, json::array({mapping(8080, 80)}));
    config["watch"] = false;  // what CHECK sees, before a watcher mends it
    auto add = cni(lab, vars("ADD", "c1", netns), config.dump());
    REQUIRE(add.status == 0);
    config["prevResult"] = json::parse(add.out);
    auto check = [&] { return cni(lab, vars("CHECK", "c1", netns), config.dump()); };
    REQUIRE(check().status == 0);

    SECTION("a map element removed") {
        sh("nft delete element inet portpub pub4 '{ tcp . 8080 }'");
        auto e = error_of(check());
        CHECK(e["code"] == 100);
        CHECK_THAT(e["msg"].get<std::string>(),
                   Catch::Contains("map element tcp 0.0.0.0:8080 -> 198.51.100.2:80 is missing"));
    }
    SECTION("the veth removed") {
        sh("ip link del " + config["prevResult"]["interfaces"][1]["name"].get<std::string>());
        CHECK_THAT(error_of(check())["msg"].get<std::string>(),
                   Catch::Contains("veth pp") && Catch::Contains("is missing"));
    }
    SECTION("the proxy killed") {
        auto pid = lab.proxy_pid("c1");
        REQUIRE(pid);
        ::kill(*pid, SIGKILL);
        wait_until("the killed proxy to exit", 2000, [&] { return !alive(*pid); });
        CHECK_THAT(error_of(check())["msg"].get<std::string>(),
                   Catch::Contains("proxy (pid " + std::to_string(*pid) + ") is not running"));
    }
    SECTION("a container portpub never saw") {
        auto e = error_of(cni(lab, vars("CHECK", "c9", netns), config.dump()));
        CHECK_THAT(e["msg"].get<std::string>(),
                   Catch::Contains("no publication of container c9 in network labnet"));
    }
    CHECK(cni(lab, vars("DEL", "c1", netns), config.dump()).status == 0);
}

TEST_CASE("CNI chained after the bridge plugin: publishes to its address, passes its result",
          "[cni]") {
    Lab lab(0);
    const auto netns = lab.container("c1");
    // The real bridge plugin with host-local IPAM, from Debian's containernetworking-plugins.
    json bridge_conf = {
        {"cniVersion", "1.0.0"},
        {"name", "chain"},
        {"type", "bridge"},
        {"bridge", "cni-lab0"},
        {"isGateway", true},
        {"isDefaultGateway", true},
        {"ipMasq", false},
        {"ipam",
         {{"type", "host-local"}, {"subnet", kSubnet}, {"dataDir", lab.state_dir() + ".ipam"}}}};
    auto bridge_add = cni_run(lab, std::string(kCniPluginDir) + "/bridge", vars("ADD", "c1", netns),
                              bridge_conf.dump());
    INFO(bridge_add.out << bridge_add.err);
    REQUIRE(bridge_add.status == 0);
    const auto prev = json::parse(bridge_add.out);
    const auto attached = lab.snapshot();  // what portpub's DEL must come back to

    json conf = {{"cniVersion", "1.0.0"},
                 {"name", "chain"},
                 {"type", "portpub"},
                 {"stateDir", lab.state_dir()},
                 {"runtimeConfig", {{"portMappings", json::array({mapping(8080, 80)})}}},
                 {"prevResult", prev}};
    auto add = cni(lab, vars("ADD", "c1", netns), conf.dump());
    INFO(add.out << add.err);
    REQUIRE(add.status == 0);
    CHECK(json::parse(add.out) == prev);  // passed on as it came
    CHECK_THAT(sh("ip -o link show"), !Catch::Contains("pp1") && !Catch::Contains("portpub0"));
    auto reply = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(reply);
    CHECK(words(*reply).at(0) == "c1");
    CHECK(words(*reply).at(1) == kExtIp);
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "c1");
    CHECK(cni(lab, vars("CHECK", "c1", netns), conf.dump()).status == 0);

    REQUIRE(cni(lab, vars("DEL", "c1", netns), conf.dump()).status == 0);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 500));
    // The bridge plugin's link, address and ip_forward stay, as they were.
    CHECK(diff_lines(attached, lab.snapshot()) == "");
    CHECK(cni_run(lab, std::string(kCniPluginDir) + "/bridge", vars("DEL", "c1", netns),
                  bridge_conf.dump())
              .status == 0);
}

TEST_CASE("CNI errors: code and message on stdout, non-zero exit, nothing changed", "[cni]") {
    Lab lab(0);
    const auto netns = lab.container("c1");
    const auto before = lab.snapshot();
    const auto good = main_config(lab, json::array({mapping(8080, 80)}));
    auto bad_port = good;
    bad_port["runtimeConfig"]["portMappings"][0]["hostPort"] = 70000;
    auto old_version = good;
    old_version["cniVersion"] = "0.4.0";
    auto bad_subnet = good;
    bad_subnet["subnet"] = "198.51.100.0/33";
    auto no_env = vars("ADD", "c1", netns);
    no_env.erase("CNI_CONTAINERID");
    const std::tuple<std::map<std::string, std::string>, std::string, int, std::string> cases[] = {
        {no_env, good.dump(), 4, "CNI_CONTAINERID is not set"},
        {vars("ADDD", "c1", netns), good.dump(), 4, "CNI_COMMAND 'ADDD'"},
        {vars("ADD", "c1", netns), "{not json", 6, "not JSON"},
        {vars("ADD", "c1", netns), bad_port.dump(), 7, "portMappings[0].hostPort 70000"},
        {vars("ADD", "c1", netns), bad_subnet.dump(), 7, "198.51.100.0/33"},
        {vars("ADD", "c1", netns), old_version.dump(), 1, "CNI version 0.4.0 is not supported"},
        {vars("ADD", "c1", "/run/netns/nosuch"), good.dump(), 100, "/run/netns/nosuch"},
    };
    for (const auto& [env, config, code, message] : cases) {
        INFO(config);
        auto e = error_of(cni(lab, env, config));
        CHECK(e["code"] == code);
        CHECK_THAT(e["msg"].get<std::string>(), Catch::Contains(message));
        CHECK(lab.snapshot() == before);
    }
    // A port another container holds: the second ADD fails and leaves nothing of its own.
    const auto c2 = lab.container("c2");
    REQUIRE(cni(lab, vars("ADD", "c1", netns), good.dump()).status == 0);
    const auto one = lab.snapshot();
    auto e = error_of(cni(lab, vars("ADD", "c2", c2), good.dump()));
    CHECK_THAT(e["msg"].get<std::string>(),
               Catch::Contains("host port 8080/tcp is already published by container c1"));
    CHECK(lab.snapshot() == one);
    CHECK(cni(lab, vars("DEL", "c1", netns), good.dump()).status == 0);
}

TEST_CASE("CNI VERSION and STATUS", "[cni]") {
    Lab lab(0);
    auto version = cni(lab, {{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.1.0"})");
    REQUIRE(version.status == 0);
    auto v = json::parse(version.out);
    CHECK(v["supportedVersions"] == json{"1.0.0", "1.1.0"});
    auto status = cni(lab, {{"CNI_COMMAND", "STATUS"}}, main_config(lab, json::array()).dump());
    CHECK(status.status == 0);
    CHECK(status.out.empty());
}

TEST_CASE("CNI GC removes every publication of the network not in valid-attachments", "[cni]") {
    Lab lab(0);
    const auto n1 = lab.container("c1");
    const auto n2 = lab.container("c2");
    REQUIRE(
        cni(lab, vars("ADD", "c1", n1), main_config(lab, json::array({mapping(8081, 80)})).dump())
            .status == 0);
    REQUIRE(
        cni(lab, vars("ADD", "c2", n2), main_config(lab, json::array({mapping(8082, 80)})).dump())
            .status == 0);
    // A publication of the CLI is not the network's, and GC leaves it alone.
    const auto n3 = lab.container("c3");
    lab.up(n3, {"8083:80"}, {"--bridge", "pp1"});

    auto gc_config = main_config(lab, json::array());
    gc_config["cniVersion"] = "1.1.0";
    gc_config["cni.dev/valid-attachments"] = {{{"containerID", "c1"}, {"ifname", "eth0"}}};
    auto gc = cni(lab, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", kCniPluginDir}}, gc_config.dump());
    INFO(gc.out << gc.err);
    CHECK(gc.status == 0);
    CHECK(gc.out.empty());
    CHECK(lab.answering("ext", kHostIp, 8081) == "c1");
    CHECK(lab.answering("ext", kHostIp, 8082, 500) == "");
    CHECK(lab.answering("ext", kHostIp, 8083) == "c3");
    auto ls = lab.portpub({"ls"}).out;
    CHECK_THAT(ls, Catch::Contains("c1") && !Catch::Contains("c2") && Catch::Contains("c3"));
}
