// portpub driven by the real container runtimes of Debian 12: runc and crun
// with the hooks of a bundle's config.json, Podman with the repository's
// hooks.d file, and Podman's CNI backend with portpub as its plugin. The
// service is `busybox httpd` in a root filesystem the test builds.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "lab.hpp"

using namespace lab;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& path) {
    std::ifstream in(path);
    REQUIRE(in);
    return json::parse(in);
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

// The lab's own directory on its private /run.
fs::path lab_dir(const Lab& lab) {
    return fs::path(lab.state_dir()).parent_path();
}

// A root filesystem of busybox (and the libraries it needs, if it is not the
// static build) whose /www/index.html is `page`.
fs::path make_rootfs(const fs::path& dir, const std::string& page) {
    const auto root = dir / "rootfs";
    for (const char* d : {"bin", "www", "proc", "dev", "sys", "etc", "tmp"})
        fs::create_directories(root / d);
    const std::string busybox = sh("command -v busybox | tr -d '\\n'");
    sh("cp " + busybox + " " + (root / "bin/busybox").string() + " && ln -s busybox " +
       (root / "bin/sh").string() + " && ln -s busybox " + (root / "bin/httpd").string() +
       " && { ldd " + busybox + " 2>/dev/null | grep -o '/[^ ]*' | xargs -r -I{} cp --parents {} " +
       root.string() + "; true; }");
    write_file(root / "www/index.html", page);
    return root;
}

// The page over HTTP, fetched from namespace `from` ("host" or "ext"). A
// runtime returns once the container's process runs, maybe before httpd
// listens: a refused connection is tried again, for at most `tries` times.
std::string fetch(const std::string& from, const std::string& ip, int port, int tries = 20) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "3",
                                     "http://" + ip + ":" + std::to_string(port) + "/"};
    if (from != "host") argv.insert(argv.begin(), {"ip", "netns", "exec", from});
    RunResult r;
    for (int i = 0; i < tries; ++i) {
        r = run(argv);
        if (r.status == 0) return r.out;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "(failed, status " + std::to_string(r.status) + ": " + r.err + ")";
}

// Runs a runtime command with its output in `log` (a container started
// detached keeps the runtime's stdio, and must not keep the test's pipes).
int run_logged(const std::vector<std::string>& argv, const fs::path& log,
               const std::vector<std::pair<std::string, std::string>>& env = {}) {
    return run(argv,
               [&] {
                   for (const auto& [k, v] : env)
                       ::setenv(k.c_str(), v.c_str(), 1);
                   int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                   int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                   ::dup2(null, 0);
                   ::dup2(fd, 1);
                   ::dup2(fd, 2);
               })
        .status;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A hook of the repository's files, pointed at the built portpub and the lab's
// state directory.
void point_at_build(json& hook, const Lab& lab) {
    hook["path"] = PORTPUB_BIN;
    hook["args"].push_back("--state-dir");
    hook["args"].push_back(lab.state_dir());
}

// crun refuses a cgroup v1 host whose cgroup2 mount holds a controller
// ("hybrid mode"). Unmounting that cgroup2 in the test's private mount
// namespace leaves plain v1, as on older hosts; the host never sees it.
void hide_hybrid_cgroup2() {
    if (fs::exists("/sys/fs/cgroup/unified/cgroup.controllers") &&
        !read_file("/sys/fs/cgroup/unified/cgroup.controllers").empty())
        ::umount2("/sys/fs/cgroup/unified", MNT_DETACH);
}

// Waits (bounded) until `done` holds.
bool eventually(const std::function<bool()>& done, int timeout_ms = 10000) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
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
    CHECK(eventually([&] {
        return run({runtime, "--root", root, "state", id}).out.find("\"stopped\"") !=
               std::string::npos;
    }));
    REQUIRE(rt({"delete", id}) == 0);
    INFO(read_file(log));
    CHECK(lab.snapshot() == before);  // no veth, rule, record or log left
    if (proxy) CHECK_FALSE(alive(*proxy));
    CHECK(fetch("ext", kHostIp, 8080, 1) != page);
}

// Podman, rootful, confined to the lab: its storage, run root and
// configuration in the lab's directory; the root filesystem given as --rootfs.
struct Podman {
    fs::path dir, conf, log;
    std::vector<std::string> global;

    Podman(const Lab& lab, const std::string& extra_conf = "") {
        dir = lab_dir(lab) / "podman";
        fs::create_directories(dir / "tmp");
        conf = dir / "containers.conf";
        log = dir / "log";
        write_file(conf,
                   "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
                   "tmp_dir = \"" +
                       (dir / "tmp").string() + "\"\n" + extra_conf);
        global = {"podman",
                  "--root",
                  (dir / "storage").string(),
                  "--runroot",
                  (dir / "runroot").string(),
                  "--storage-driver",
                  "vfs"};
    }
    int operator()(std::vector<std::string> args) const {
        args.insert(args.begin(), global.begin(), global.end());
        return run_logged(args, log, {{"CONTAINERS_CONF", conf.string()}});
    }
    // `podman run -d` of httpd serving `page`, with `options` before the image.
    int run_httpd(const std::string& name, const std::string& page,
                  const std::vector<std::string>& options) const {
        const auto rootfs = make_rootfs(dir / name, page);
        // This sandbox refuses the runtime's raising of RLIMIT_NOFILE and
        // RLIMIT_NPROC to Podman's defaults; lower values are always allowed.
        std::vector<std::string> args = {"run",       "-d",
                                         "--name",    name,
                                         "--ulimit",  "nofile=1024:1024",
                                         "--ulimit",  "nproc=1024:1024",
                                         "--runtime", "runc"};
        args.insert(args.end(), options.begin(), options.end());
        args.insert(args.end(),
                    {"--rootfs", rootfs.string(), "/bin/httpd", "-f", "-p", "80", "-h", "/www"});
        return (*this)(args);
    }
};

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

    REQUIRE(podman({"rm", "-f", "-t", "0", "web", "other"}) == 0);
    // Podman runs poststop from its cleanup process, just after `rm` returns.
    CHECK(eventually([&] { return lab.snapshot() == before; }));
    INFO(read_file(podman.log));
    CHECK(lab.snapshot() == before);
}

TEST_CASE("podman's CNI backend with portpub as the plugin: podman run -p", "[runtime]") {
    Lab lab(0);
    const auto before = lab.snapshot();
    const auto cni_dir = lab_dir(lab) / "cni";
    fs::create_directories(cni_dir / "bin");
    fs::create_directories(cni_dir / "net.d");
    fs::create_symlink(PORTPUB_BIN, cni_dir / "bin/portpub");
    auto conflist = read_json(fs::path(SOURCE_DIR) / "hooks/cni/portpub.conflist");
    conflist["plugins"][0]["subnet"] = kSubnet;
    conflist["plugins"][0]["stateDir"] = lab.state_dir();
    write_file(cni_dir / "net.d/portpub.conflist", conflist.dump());
    Podman podman(lab, "[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"" +
                           (cni_dir / "net.d").string() + "\"\ncni_plugin_dirs = [\"" +
                           (cni_dir / "bin").string() + "\"]\n");

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

    REQUIRE(podman({"rm", "-f", "-t", "0", "web"}) == 0);
    CHECK(eventually([&] { return lab.snapshot() == before; }));
    CHECK(diff_lines(before, lab.snapshot()) == "");
}
