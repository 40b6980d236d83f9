// What portpub must not take on trust: a process that calls itself
// portpub-proxy, a record that names what it did not make, a runtime's
// clean-up call for a container that is not the one published. Each case is
// how a careless or hostile user would try it, and checks that nothing but
// portpub's own is deleted, signalled or reported.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "lab.hpp"

using namespace lab;
namespace fs = std::filesystem;

namespace {

// The directory the lab's state directory is in: the test's own, on tmpfs.
std::string lab_dir(const Lab& lab) {
    return fs::path(lab.state_dir()).parent_path().string();
}

std::string comm_of(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

TEST_CASE("gc and check leave alone a process that only calls itself portpub's proxy", "[trust]") {
    Lab lab(0);
    lab.watch = false;  // gc, not a watcher, finishes the killed up
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});  // the logs directory exists from here on
    // Files outside the state directory that a forged --id points at.
    const std::string victim = lab_dir(lab) + "/victim";
    for (const char* suffix : {".log", ".log.1", "-root.log"})
        std::ofstream(victim + suffix) << "not portpub's\n";
    // Any program runs under the proxy's name through a symbolic link.
    const std::string fake = lab_dir(lab) + "/portpub-proxy";
    REQUIRE(::symlink("/bin/bash", fake.c_str()) == 0);
    // One as an unprivileged user, one as root but not the portpub binary;
    // each with arguments a proxy of this state directory would have.
    const int nobody = lab.spawn(
        "host", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", fake, "-c",
                 "sleep 60; true", "--state-dir", lab.state_dir(), "--id", "../../victim"});
    const int root = lab.spawn("host", {fake, "-c", "sleep 60; true", "--state-dir",
                                        lab.state_dir(), "--id", "../../victim-root"});
    const int forger = lab.spawn("host", {fake, "-c", "sleep 60; true", "--state-dir",
                                          lab.state_dir(), "--id", "x\nok: all is well"});
    // And with ids `up` would take: no record names them, so only who runs
    // them and what tells them apart from a proxy left by a crash.
    const int valid_nobody = lab.spawn(
        "host", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", fake, "-c",
                 "sleep 60; true", "--state-dir", lab.state_dir(), "--id", "stray"});
    const int valid_root = lab.spawn(
        "host", {fake, "-c", "sleep 60; true", "--state-dir", lab.state_dir(), "--id", "stray2"});
    const std::vector<int> impostors{nobody, root, forger, valid_nobody, valid_root};
    for (int pid : impostors)
        wait_until("pid " + std::to_string(pid) + " to run as portpub-proxy", 5000,
                   [pid] { return comm_of(pid) == "portpub-proxy"; });

    auto check = lab.portpub({"check"});
    CHECK(check.status == 0);
    CHECK(check.out == "ok: 1 publication matches the kernel\n");
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK(gc.out == "nothing to remove\n");
    for (int pid : impostors)
        CHECK(alive(pid));
    for (const char* suffix : {".log", ".log.1", "-root.log"})
        CHECK(fs::exists(victim + suffix));
    // portpub's own proxy is still found and served.
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK(proxies().size() == 6);  // its own and the five impostors, by name

    // An up killed before it wrote its proxy's pid down: the next command
    // stops the proxy it started, found by its id, and not an impostor of it.
    auto db = lab.container("db");
    auto crashed = lab.portpub({"up", "--netns", db, "--subnet", kSubnet, "-p", "9090:80"},
                               [] { ::setenv("PORTPUB_CRASH_AT", "up:proxy-started", 1); });
    REQUIRE(crashed.status == 128 + SIGKILL);
    const int db_impostor =
        lab.spawn("host", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", fake,
                           "-c", "sleep 60; true", "--state-dir", lab.state_dir(), "--id", "db"});
    wait_until("the db impostor to run as portpub-proxy", 5000,
               [&] { return comm_of(db_impostor) == "portpub-proxy"; });
    REQUIRE(proxies().size() == 8);
    auto finish = lab.portpub({"gc"});
    CHECK_THAT(finish.out, Catch::Contains("removed db: an up of it was interrupted"));
    CHECK(alive(db_impostor));
    CHECK(proxies().size() == 7);  // db's own proxy stopped, the impostor not
}

TEST_CASE("gc finds a proxy left by the portpub binary an upgrade replaced", "[trust]") {
    Lab lab(0);
    auto web = lab.container("web");
    // portpub run from a path of its own, as /usr/sbin/portpub is.
    const std::string bin = lab_dir(lab) + "/bin/portpub";
    sh("mkdir -p " + lab_dir(lab) + "/bin && cp " + std::string(PORTPUB_BIN) + " " + bin);
    auto at = [&](std::vector<std::string> args) {
        args.insert(args.begin(), bin);
        args.insert(args.end(), {"--state-dir", lab.state_dir()});
        return run(args);
    };
    REQUIRE(at({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"}).status == 0);
    const int proxy = *lab.proxy_pid("web");
    // The upgrade: a new file at the same path. The record is lost too.
    sh("rm " + bin + " && cp " + std::string(PORTPUB_BIN) + " " + bin + " && rm " +
       lab.state_dir() + "/containers/web.json");
    auto gc = at({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("stopped proxy pid " + std::to_string(proxy) + " of web"));
    CHECK_FALSE(alive(proxy));
}

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

std::string record_path(const Lab& lab, const std::string& name) {
    return lab.state_dir() + "/containers/" + name + ".json";
}

}  // namespace

TEST_CASE("a record that names what portpub did not make is reported and left alone", "[trust]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"});
    // Two records as root could plant them (or an old backup restores them),
    // for a container whose namespace is gone, so that gc takes them apart:
    // one whose id is a path out of the state directory, one whose veth is
    // the host's uplink.
    auto planted = nlohmann::json::parse(read_text(record_path(lab, "web")));
    planted["netns"] = "/run/netns/gone";
    planted["id"] = "../../victim";
    write_text(record_path(lab, "evil"), planted.dump());
    planted["id"] = "x";
    planted["host_veth"] = "ext0";
    write_text(record_path(lab, "x"), planted.dump());
    const std::string victim = lab_dir(lab) + "/victim.json";
    write_text(victim, "not portpub's\n");

    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    INFO(gc.out << gc.err);
    CHECK_THAT(gc.out, Catch::Contains("left alone: record " + record_path(lab, "evil") +
                                       " is not one portpub wrote (invalid container id "
                                       "'../../victim'"));
    CHECK_THAT(gc.out, Catch::Contains("left alone: record " + record_path(lab, "x") +
                                       " is not one portpub wrote (host_veth 'ext0' is not the "
                                       "veth portpub names for 198.51.100.2"));
    CHECK(fs::exists(victim));
    CHECK(fs::exists(record_path(lab, "evil")));
    CHECK(sh("ip -o link show ext0").find("ext0") != std::string::npos);
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
    // check names them, ls and down of the others go on.
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains(record_path(lab, "x") + " is not one portpub wrote"));
    auto ls = lab.portpub({"ls"});
    CHECK(ls.status == 0);
    CHECK_THAT(ls.out, Catch::Contains("web"));
    CHECK_THAT(ls.err, Catch::Contains(record_path(lab, "evil")));
    CHECK(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(sh("ip -o link show ext0").find("ext0") != std::string::npos);
    CHECK(fs::exists(victim));
}

TEST_CASE("a damaged record keeps no other container from being listed, published or removed",
          "[trust]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    auto c = lab.container("c");
    const auto before = lab.snapshot();
    lab.up(a, {"8080:80"});
    lab.up(b, {"9090:80"});
    // b's record cut short, as a crash of an editor or a full disk leaves it.
    const auto text = read_text(record_path(lab, "b"));
    write_text(record_path(lab, "b"), text.substr(0, text.size() / 2));

    auto ls = lab.portpub({"ls"});
    CHECK(ls.status == 0);
    CHECK_THAT(ls.out, Catch::Contains("a ") && !Catch::Contains("b "));
    CHECK_THAT(ls.err, Catch::Contains(record_path(lab, "b") + " is not valid JSON") &&
                           Catch::Contains("move it away once you know what it was"));
    lab.up(c, {"7070:80"});
    CHECK(lab.answering("ext", kHostIp, 7070) == "c");
    CHECK(lab.portpub({"down", "--id", "c"}).status == 0);
    CHECK(lab.portpub({"down", "--id", "a"}).status == 0);
    // Nothing b may hold is taken: its ports, its veth, the table and bridge,
    // its way out (masqueraded) and its isolation (closed to direct access).
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("left alone: record " + record_path(lab, "b")));
    CHECK(lab.answering("ext", kHostIp, 9090) == "b");
    lab.serve("ext");
    auto out = lab.tcp("b", kExtIp, 80);
    REQUIRE(out);
    CHECK(words(*out).at(1) == kHostIp);
    CHECK_FALSE(lab.tcp("ext", "198.51.100.3", 80, 1000));
    // Its own id is not written over by another up.
    auto again = lab.portpub({"up", "--netns", b, "--subnet", kSubnet, "-p", "9191:80"});
    CHECK(again.status == 1);
    CHECK_THAT(again.err, Catch::Contains(record_path(lab, "b") + " is not valid JSON"));
    CHECK(read_text(record_path(lab, "b")) == text.substr(0, text.size() / 2));
    auto check = lab.portpub({"check"});
    CHECK(check.status == 1);
    CHECK_THAT(check.out, Catch::Contains(record_path(lab, "b")));
    // Removing b itself is for a person who knows what it was.
    auto down = lab.portpub({"down", "--id", "b"});
    CHECK(down.status == 1);
    CHECK_THAT(down.err, Catch::Contains(record_path(lab, "b") + " is not valid JSON"));
    CHECK(lab.answering("ext", kHostIp, 9090) == "b");
    // Put back as it was, b goes as any other.
    write_text(record_path(lab, "b"), text);
    CHECK(lab.portpub({"down", "--id", "b"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("down works on a full state filesystem, and check on a read-only one", "[trust]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    // The state directory on a file system of its own, small enough to fill.
    sh("mkdir -p " + lab.state_dir() + " && mount -t tmpfs -o size=512k,mode=0700 tmpfs " +
       lab.state_dir());
    lab.up(web, {"8080:80"});
    lab.up(db, {"9090:80"});
    sh("dd if=/dev/zero of=" + lab.state_dir() + "/filler bs=4k 2>/dev/null; true");
    CHECK(sh("df --output=avail " + lab.state_dir() + " | tail -1 | tr -d ' '") == "0\n");
    // up cannot write its record first: it changes nothing.
    auto more =
        lab.portpub({"up", "--netns", lab.container("more"), "--subnet", kSubnet, "-p", "7070:80"});
    CHECK(more.status == 1);
    CHECK_THAT(more.err, Catch::Contains("No space left on device"));
    // down has nothing it must write.
    auto down = lab.portpub({"down", "--id", "web"});
    CHECK(down.status == 0);
    CHECK(down.out == "web\n");
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    CHECK(lab.portpub({"down", "--id", "db"}).status == 0);
    sh("rm " + lab.state_dir() + "/filler");

    // Read-only: what only looks needs no write access.
    lab.up(db, {"9090:80"});
    sh("mount --bind " + lab.state_dir() + " " + lab.state_dir() + " && mount -o remount,bind,ro " +
       lab.state_dir());
    auto check = lab.portpub({"check"});
    CHECK(check.status == 0);
    CHECK(check.out == "ok: 1 publication matches the kernel\n");
    CHECK(lab.portpub({"ls"}).status == 0);
    auto refused = lab.portpub({"down", "--id", "db"});
    CHECK(refused.status == 1);
    CHECK_THAT(refused.err, Catch::Contains("Read-only file system"));
    sh("umount " + lab.state_dir());
    CHECK(lab.portpub({"down", "--id", "db"}).status == 0);
    sh("umount " + lab.state_dir());
    lab.remove_container("more");
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

namespace {

// `portpub oci-hook` with `state` on its stdin, as a runtime runs it.
RunResult hook(const Lab& lab, const nlohmann::json& state) {
    const std::string path = lab.state_dir() + ".oci-state.json";
    std::ofstream(path) << state.dump();
    return lab.portpub({"oci-hook"}, [path] {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ::dup2(fd, 0);
    });
}

nlohmann::json oci_state(const std::string& status, int pid, const std::string& bundle) {
    nlohmann::json s = {
        {"ociVersion", "1.0.2"},
        {"id", "web"},
        {"status", status},
        {"bundle", bundle},
        {"annotations", {{"io.portpub.ports", "8080:80"}, {"io.portpub.subnet", kSubnet}}}};
    if (pid > 0) s["pid"] = pid;
    return s;
}

std::map<std::string, std::string> cni_vars(const std::string& command, const std::string& id,
                                            const std::string& netns,
                                            const std::string& ifname = "eth0") {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", id},
            {"CNI_NETNS", netns},
            {"CNI_IFNAME", ifname},
            {"CNI_PATH", "/usr/lib/cni"}};
}

nlohmann::json cni_config(const Lab& lab, int host_port) {
    return {
        {"cniVersion", "1.1.0"},
        {"name", "labnet"},
        {"type", "portpub"},
        {"subnet", kSubnet},
        {"stateDir", lab.state_dir()},
        {"runtimeConfig", {{"portMappings", {{{"hostPort", host_port}, {"containerPort", 80}}}}}}};
}

}  // namespace

TEST_CASE("a poststop for another container of the same id leaves the publication alone",
          "[trust]") {
    // As runc with two --root directories runs two containers "web": the
    // second is refused at createRuntime, and runc runs its poststop.
    Lab lab(0);
    lab.container("a");
    lab.container("b");
    const auto before = lab.snapshot();
    const int first = lab.server_pid("a"), second = lab.server_pid("b");
    REQUIRE(hook(lab, oci_state("creating", first, "/bundles/a")).status == 0);
    for (const char* bundle : {"/bundles/b", "/bundles/a"}) {  // the same bundle too
        INFO("second container's bundle " << bundle);
        auto refused = hook(lab, oci_state("creating", second, bundle));
        CHECK(refused.status == 1);
        CHECK_THAT(refused.err, Catch::Contains("container id web is already used"));
        // Its poststop, as runc gives it: no pid once stopped; with one too.
        for (int pid : {0, second}) {
            auto poststop = hook(lab, oci_state("stopped", pid, bundle));
            CHECK(poststop.status == 0);
            CHECK_THAT(poststop.err, Catch::Contains("is another container's than this "
                                                     "poststop's: left alone"));
            CHECK(lab.answering("ext", kHostIp, 8080) == "a");
        }
    }
    // The first container's own poststop, once its process is gone.
    lab.kill_servers("a");
    auto poststop = hook(lab, oci_state("stopped", 0, "/bundles/a"));
    CHECK(poststop.status == 0);
    CHECK(poststop.err == "");
    CHECK(lab.portpub({"ls", "--json"}).out == "[]\n");
    lab.remove_container("a");
    lab.remove_container("b");
    lab.container("a");  // as it was for `before`: the lab's namespaces
    lab.container("b");
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("a CNI DEL for another namespace or interface leaves the publication alone", "[trust]") {
    Lab lab(0);
    const auto c1 = lab.container("c1");
    const auto c2 = lab.container("c2");
    REQUIRE(lab.cni(cni_vars("ADD", "ctrA", c1), cni_config(lab, 8080).dump()).status == 0);
    // ADD of the same id in c2 is refused; the runtime's clean-up DEL follows.
    auto add = lab.cni(cni_vars("ADD", "ctrA", c2), cni_config(lab, 8081).dump());
    CHECK(add.status != 0);
    for (const auto& [netns, ifname] : std::vector<std::pair<std::string, std::string>>{
             {c2, "eth0"}, {"/run/netns/gone", "eth0"}, {c1, "eth1"}}) {
        INFO("DEL with CNI_NETNS=" << netns << " CNI_IFNAME=" << ifname);
        auto del = lab.cni(cni_vars("DEL", "ctrA", netns, ifname), cni_config(lab, 8081).dump());
        CHECK(del.status == 0);
        CHECK(del.out.empty());
        CHECK(lab.answering("ext", kHostIp, 8080) == "c1");
        // CHECK of that other container does not vouch for this one.
        auto check =
            lab.cni(cni_vars("CHECK", "ctrA", netns, ifname), cni_config(lab, 8080).dump());
        CHECK(check.status != 0);
    }
    CHECK(lab.cni(cni_vars("CHECK", "ctrA", c1), cni_config(lab, 8080).dump()).status == 0);
    // Its own DEL; and once its namespace is gone, by the path it had.
    auto del = lab.cni(cni_vars("DEL", "ctrA", c1), cni_config(lab, 8080).dump());
    CHECK(del.status == 0);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 1000));
    REQUIRE(lab.cni(cni_vars("ADD", "ctrB", c2), cni_config(lab, 8082).dump()).status == 0);
    lab.remove_container("c2");
    // Named as containerd names it: /var/run/netns/..., a link to /run.
    CHECK(lab.cni(cni_vars("DEL", "ctrB", "/var" + c2), cni_config(lab, 8082).dump()).status == 0);
    CHECK(lab.portpub({"ls", "--json"}).out == "[]\n");
}

TEST_CASE("CNI GC keeps a container its list names in any spelling, or without an ifname",
          "[trust]") {
    Lab lab(0);
    const auto c1 = lab.container("c1");
    const auto c2 = lab.container("c2");
    const auto c3 = lab.container("c3");
    REQUIRE(lab.cni(cni_vars("ADD", "c1", c1), cni_config(lab, 8081).dump()).status == 0);
    REQUIRE(lab.cni(cni_vars("ADD", "c2", c2), cni_config(lab, 8082).dump()).status == 0);
    REQUIRE(lab.cni(cni_vars("ADD", "c3", c3), cni_config(lab, 8083).dump()).status == 0);
    auto gc_config = cni_config(lab, 8081);
    gc_config["cni.dev/valid-attachments"] = {{{"containerId", "c1"}, {"ifname", "eth0"}},
                                              {{"containerID", "c2"}}};
    auto gc = lab.cni({{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/usr/lib/cni"}}, gc_config.dump());
    INFO(gc.out << gc.err);
    CHECK(gc.status == 0);
    CHECK(lab.answering("ext", kHostIp, 8081) == "c1");
    CHECK(lab.answering("ext", kHostIp, 8082) == "c2");
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8083, 1000));
    // An attachment that names no container would keep none: refused whole.
    gc_config["cni.dev/valid-attachments"] = {{{"ifname", "eth0"}}};
    auto bad = lab.cni({{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/usr/lib/cni"}}, gc_config.dump());
    CHECK(bad.status != 0);
    CHECK_THAT(bad.out, Catch::Contains("has no containerID; GC removes nothing"));
    CHECK(lab.answering("ext", kHostIp, 8081) == "c1");
}

TEST_CASE("a damaged record's address is not given again, nor a copied record's container's",
          "[trust]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    auto c = lab.container("c");
    lab.up(a, {"8080:80"});
    const auto b_up = nlohmann::json::parse(lab.up(b, {"9090:80"}, {"--json"}).out);
    const auto b_address = b_up.at("address").get<std::string>();
    write_text(record_path(lab, "b"), "{");
    // b's namespace goes, and its veth with it; its ports still lead to its address.
    lab.remove_container("b");
    const auto c_up = nlohmann::json::parse(lab.up(c, {"7070:80"}, {"--json"}).out);
    CHECK(c_up.at("address").get<std::string>() != b_address);
    CHECK(lab.answering("ext", kHostIp, 9090) != "c");
    // A record copied under another id names a's address, veth and
    // namespace: neither is used, so neither down takes a's away.
    auto copy = nlohmann::json::parse(read_text(record_path(lab, "a")));
    copy["id"] = "x";
    write_text(record_path(lab, "x"), copy.dump());
    auto down = lab.portpub({"down", "--id", "x"});
    CHECK(down.status == 1);
    CHECK_THAT(down.err, Catch::Contains("records " + record_path(lab, "a") + " and " +
                                         record_path(lab, "x") + " both name"));
    CHECK(lab.answering("ext", kHostIp, 8080) == "a");
}

TEST_CASE("a poststop leaves alone what portpub up published by hand under that id", "[trust]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, {"8080:80"}, {"--id", "web"});
    auto poststop = hook(lab, oci_state("stopped", 0, "/bundles/web"));
    CHECK(poststop.status == 0);
    CHECK_THAT(poststop.err, Catch::Contains("left alone"));
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
}

TEST_CASE("a host state naming an interface portpub did not make brings nothing down", "[trust]") {
    Lab lab(0);
    auto web = lab.container("web");
    sh("ip link add br-user type bridge && ip link add user0 type veth peer name user1 && "
       "ip link set user0 master br-user && ip link set br-user up");
    const auto before = lab.snapshot();
    lab.up(web, {"8080:80"});
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    // As if portpub had made them: the uplink, and a bridge someone uses.
    sh("mkdir -p " + lab.state_dir());
    write_text(lab.state_dir() + "/host.json",
               R"({"bridges": {"ext0": {"created": true, "address_added": true, "brought_up": true},
                               "br-user": {"created": true, "address_added": false,
                                           "brought_up": true}}})");
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("left alone: interface ext0 is not a bridge"));
    CHECK_THAT(gc.out, Catch::Contains("left alone: bridge br-user has port user0"));
    CHECK(diff_lines(before, lab.snapshot()) == "");
    // A damaged one: up refuses to make what it could not write down.
    write_text(lab.state_dir() + "/host.json", "{\"bridges\": ");
    auto up = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"});
    CHECK(up.status == 1);
    CHECK_THAT(up.err, Catch::Contains("host state") && Catch::Contains("is unusable"));
    auto restore = lab.portpub({"restore"});
    CHECK(restore.status == 1);
    CHECK_THAT(restore.err, Catch::Contains("is unusable"));
    sh("rm " + lab.state_dir() + "/host.json");
    CHECK(diff_lines(before, lab.snapshot()) == "");
    sh("ip link del br-user && ip link del user0");
}
