// portpub driven by the real container runtimes of Debian 12: runc and crun
// with the hooks of a bundle's config.json, Podman with the repository's
// hooks.d file, and Podman's CNI backend with portpub as its plugin. The
// service is `busybox httpd` in a root filesystem the test builds.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "lab.hpp"
#include "runtimes.hpp"

using namespace lab;
using namespace lab::runtimes;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The proxy of the one container portpub has published.
int only_proxy(const Lab& lab) {
    const auto ls = json::parse(lab.portpub({"ls", "--json"}).out);
    REQUIRE(ls.size() == 1);
    const auto pid = lab.proxy_pid(ls[0]["id"].get<std::string>());
    REQUIRE(pid);
    return *pid;
}

// One container of `runtime` (runc or crun) from a bundle whose config.json
// carries the repository's hook fragment: published while it runs, nothing
// left once it is deleted.
void run_bundle(const std::string& runtime) {
    Lab lab(0);
    hide_hybrid_cgroup2();
    const auto before = lab.snapshot();
    const auto dir = lab_dir(lab) / runtime;
    fs::create_directories(dir);
    const std::string page = "served by " + runtime + " through portpub\n";
    make_rootfs(dir, page);
    sh("cd " + dir.string() + " && " + runtime + " spec");
    auto config = read_json(dir / "config.json");
    config["process"]["terminal"] = false;
    config["process"]["args"] = {"/bin/httpd", "-f", "-p", "80", "-h", "/www"};
    auto fragment = read_json(fs::path(SOURCE_DIR) / "hooks/runc-config-hooks.json");
    for (auto& [stage, hooks] : fragment["hooks"].items())
        for (auto& hook : hooks)
            point_at_build(hook, lab);
    config["hooks"] = fragment["hooks"];
    config["annotations"] = fragment["annotations"];
    config["annotations"]["io.portpub.ports"] = "8080:80";
    config["annotations"]["io.portpub.subnet"] = kSubnet;
    write_file(dir / "config.json", config.dump());

    const std::string root = (dir / "state").string();
    const fs::path log = dir / "log";
    const std::string id = "web-" + runtime;
    auto rt = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {runtime, "--root", root});
        return run_logged(args, log);
    };
    INFO(read_file(log));
    REQUIRE(rt({"run", "-d", "--bundle", dir.string(), id}) == 0);
    CHECK(fetch("ext", kHostIp, 8080) == page);
    CHECK(fetch("host", "127.0.0.1", 8080) == page);
    auto proxy = lab.proxy_pid(id);
    CHECK(proxy);

    // The container exits; deleting it runs the poststop hook.
    REQUIRE(rt({"kill", id, "KILL"}) == 0);
    wait_until(runtime + " to say " + id + " stopped", 10000, [&] {
        return run({runtime, "--root", root, "state", id}).out.find("\"stopped\"") !=
               std::string::npos;
    });
    REQUIRE(rt({"delete", id}) == 0);
    INFO(read_file(log));
    CHECK(lab.snapshot() == before);  // no veth, rule, record or log left
    if (proxy) CHECK_FALSE(alive(*proxy));
    CHECK(fetch("ext", kHostIp, 8080, 1) != page);
}

}  // namespace

TEST_CASE("runc: the bundle's hooks publish while the container runs and clean up after",
          "[runtime]") {
    run_bundle("runc");
}

TEST_CASE("crun: the bundle's hooks publish while the container runs and clean up after",
          "[runtime]") {
    run_bundle("crun");
}

TEST_CASE("podman with the hooks.d file and the io.portpub.ports annotation", "[runtime]") {
    Lab lab(0);
    const auto before = lab.snapshot();
    Podman podman(lab);
    auto hook = read_json(fs::path(SOURCE_DIR) / "hooks/portpub.json");
    point_at_build(hook["hook"], lab);
    fs::create_directories(podman.dir / "hooks.d");
    write_file(podman.dir / "hooks.d/portpub.json", hook.dump());
    podman.global.insert(podman.global.end(), {"--hooks-dir", (podman.dir / "hooks.d").string()});

    const std::string page = "served by podman through the portpub hook\n";
    INFO(read_file(podman.log));
    REQUIRE(podman.run_httpd("web", page,
                             {"--network", "none", "--annotation", "io.portpub.ports=8080:80",
                              "--annotation", std::string("io.portpub.subnet=") + kSubnet}) == 0);
    CHECK(fetch("ext", kHostIp, 8080) == page);
    CHECK(fetch("host", "127.0.0.1", 8080) == page);
    // A container without the annotation is none of portpub's business.
    REQUIRE(podman.run_httpd("other", "x", {"--network", "none"}) == 0);
    CHECK(lab.portpub({"ls", "--json"}).out.find("other") == std::string::npos);

    const auto proxy = only_proxy(lab);
    REQUIRE(podman({"rm", "-f", "-t", "0", "web", "other"}) == 0);
    // Podman runs poststop from its cleanup process, just after `rm` returns.
    INFO(read_file(podman.log));
    CHECK(eventually(10000, [&] { return lab.snapshot() == before; }));
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK_FALSE(alive(proxy));
}

TEST_CASE("podman's CNI backend with portpub as the plugin: podman run -p", "[runtime]") {
    Lab lab(0);
    const auto before = lab.snapshot();
    auto conflist = read_json(fs::path(SOURCE_DIR) / "hooks/cni/portpub.conflist");
    conflist["plugins"][0]["subnet"] = kSubnet;
    conflist["plugins"][0]["stateDir"] = lab.state_dir();
    Podman podman(lab, cni_network_conf(lab, conflist));

    const std::string page = "served by podman's CNI backend through portpub\n";
    const int started = podman.run_httpd("web", page, {"--network", "portpub", "-p", "8080:80"});
    INFO(read_file(podman.log));
    REQUIRE(started == 0);
    CHECK(fetch("ext", kHostIp, 8080) == page);
    CHECK(fetch("host", "127.0.0.1", 8080) == page);
    // Served by portpub's rules, for the container podman named.
    const auto ls = json::parse(lab.portpub({"ls", "--json"}).out);
    REQUIRE(ls.size() == 1);
    CHECK(ls[0]["address"].get<std::string>().rfind("198.51.100.", 0) == 0);
    CHECK(sh("nft list map inet portpub pub4").find("8080") != std::string::npos);

    const auto proxy = only_proxy(lab);
    REQUIRE(podman({"rm", "-f", "-t", "0", "web"}) == 0);
    CHECK(eventually(10000, [&] { return lab.snapshot() == before; }));
    CHECK(diff_lines(before, lab.snapshot()) == "");
    CHECK_FALSE(alive(proxy));
}

TEST_CASE("podman's CNI backend with portpub chained after the bridge plugin", "[runtime]") {
    Lab lab(0);
    auto conflist = read_json(fs::path(SOURCE_DIR) / "hooks/cni/portpub-chained.conflist");
    conflist["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] = kSubnet;
    conflist["plugins"][1]["stateDir"] = lab.state_dir();
    // portpub from the build, bridge and host-local from Debian's plugins.
    Podman podman(lab, cni_network_conf(lab, conflist, {"/usr/lib/cni"}));

    const std::string page = "served by podman, bridge plugin, then portpub\n";
    const int started =
        podman.run_httpd("web", page, {"--network", "portpub-chained", "-p", "8080:80"});
    INFO(read_file(podman.log));
    REQUIRE(started == 0);
    CHECK(fetch("ext", kHostIp, 8080) == page);
    CHECK(fetch("host", "127.0.0.1", 8080) == page);
    const auto ls = json::parse(lab.portpub({"ls", "--json"}).out);
    REQUIRE(ls.size() == 1);
    CHECK(ls[0]["bridge"] == "cni-pp0");  // the bridge plugin's, not one of portpub's
    CHECK_THAT(sh("ip -o link show"), !Catch::Contains("portpub0"));

    const auto proxy = only_proxy(lab);
    REQUIRE(podman({"rm", "-f", "-t", "0", "web"}) == 0);
    CHECK(eventually(10000, [&] { return lab.portpub({"ls", "--json"}).out == "[]\n"; }));
    CHECK(sh("nft list tables") == "");  // the last publication took the table with it
    CHECK_FALSE(alive(proxy));
    CHECK(fetch("ext", kHostIp, 8080, 1) != page);
}
