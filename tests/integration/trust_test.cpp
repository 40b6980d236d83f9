// What portpub must not take on trust: a process that calls itself
// portpub-proxy, a record that names what it did not make, a runtime's
// clean-up call for a container that is not the one published. Each case is
// how a careless or hostile user would try it, and checks that nothing but
// portpub's own is deleted, signalled or reported.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
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
    for (int pid : {nobody, root, forger})
        wait_until("pid " + std::to_string(pid) + " to run as portpub-proxy", 5000,
                   [pid] { return comm_of(pid) == "portpub-proxy"; });

    auto check = lab.portpub({"check"});
    CHECK(check.status == 0);
    CHECK(check.out == "ok: 1 publication matches the kernel\n");
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK(gc.out == "nothing to remove\n");
    for (int pid : {nobody, root, forger})
        CHECK(alive(pid));
    for (const char* suffix : {".log", ".log.1", "-root.log"})
        CHECK(fs::exists(victim + suffix));
    // portpub's own proxy is still found and served.
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK(proxies().size() == 4);  // its own and the three impostors, by name
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
    // Nothing b may hold is taken: its ports, its veth, the table and bridge.
    auto gc = lab.portpub({"gc"});
    CHECK(gc.status == 0);
    CHECK_THAT(gc.out, Catch::Contains("left alone: record " + record_path(lab, "b")));
    CHECK(lab.answering("ext", kHostIp, 9090) == "b");
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
