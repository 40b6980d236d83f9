// `portpub oci-hook` as a runtime runs it: the container's state on stdin,
// createRuntime to publish, poststop to unpublish.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>

#include "lab.hpp"

using namespace lab;

namespace {

// The hook with `state` on its stdin, as a runtime runs it.
RunResult hook(const Lab& lab, const std::string& state) {
    const std::string path = lab.state_dir() + ".oci-state.json";
    std::ofstream(path) << state;
    return lab.portpub({"oci-hook"}, [path] {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ::dup2(fd, 0);
    });
}

std::string creating(const std::string& id, int pid, const std::string& ports) {
    return R"({"ociVersion":"1.0.2","id":")" + id + R"(","status":"creating","pid":)" +
           std::to_string(pid) + R"(,"bundle":"/var/lib/bundles/)" + id +
           R"(","annotations":{"io.portpub.ports":")" + ports +
           R"(","io.portpub.subnet":"198.51.100.0/24"}})";
}

// A state as runc writes it for poststop: the same bundle, no pid (the
// container's processes are gone).
std::string stopped(const std::string& id) {
    return R"({"ociVersion":"1.0.2","id":")" + id +
           R"(","status":"stopped","bundle":"/var/lib/bundles/)" + id + R"("})";
}

}  // namespace

TEST_CASE("the OCI hook publishes at createRuntime and removes everything at poststop",
          "[oci_hook]") {
    Lab lab(0);
    lab.container("web");
    const auto before = lab.snapshot();
    // The container's process: its network namespace is the container's.
    const int pid = lab.server_pid("web");
    auto up = hook(lab, creating("web1", pid, "8080:80, 5353:53/udp"));
    INFO(up.err);
    REQUIRE(up.status == 0);
    CHECK(up.out.empty());  // a runtime reads nothing from a hook's stdout
    auto ext = lab.tcp("ext", kHostIp, 8080);
    REQUIRE(ext);
    CHECK(words(*ext).at(0) == "web");
    CHECK(words(*ext).at(1) == kExtIp);  // the client's address, intact
    auto udp = lab.udp("ext", kHostIp, 5353);
    REQUIRE(udp);
    CHECK(words(*udp).at(0) == "web");
    CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
    CHECK_THAT(lab.portpub({"ls"}).out,
               Catch::Contains("web1") && Catch::Contains("/proc/" + std::to_string(pid)));

    // The runtime runs poststop once the container's processes are gone.
    lab.kill_servers("web");
    auto down = hook(lab, stopped("web1"));
    CHECK(down.status == 0);
    CHECK(down.out.empty());
    CHECK(diff_lines(before, lab.snapshot()) == "");
    // poststop again, or for a container portpub never saw: nothing to do.
    CHECK(hook(lab, stopped("web1")).status == 0);
    CHECK(hook(lab, stopped("other")).status == 0);
    CHECK(lab.snapshot() == before);
}

TEST_CASE("a repeated createRuntime replaces the container's publication", "[oci_hook]") {
    Lab lab(0);
    lab.container("web");
    const int pid = lab.server_pid("web");
    REQUIRE(hook(lab, creating("web1", pid, "8080:80")).status == 0);
    REQUIRE(hook(lab, creating("web1", pid, "9090:80")).status == 0);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 8080, 500));
    CHECK(lab.tcp("ext", kHostIp, 9090));
    lab.kill_servers("web");
    REQUIRE(hook(lab, stopped("web1")).status == 0);
    CHECK_FALSE(lab.tcp("ext", kHostIp, 9090, 500));
}

TEST_CASE("a hook that cannot publish fails the start with one line and leaves nothing",
          "[oci_hook]") {
    Lab lab(0);
    lab.container("a");
    lab.container("b");
    REQUIRE(hook(lab, creating("a1", lab.server_pid("a"), "8080:80")).status == 0);
    const auto before = lab.snapshot();
    const std::pair<std::string, std::string> cases[] = {
        {creating("b1", lab.server_pid("b"), "8080:81"),
         "host port 8080/tcp is already published by container a1"},
        {creating("b1", lab.server_pid("b"), "8081:81,,8082:82"), "empty port spec"},
        {creating("b1", lab.server_pid("b"), "80800:81"), "80800"},
        {R"({"id":"../b1","status":"creating","pid":1})", "invalid container id '../b1'"},
        {"not json", "not JSON"},
    };
    for (const auto& [state, message] : cases) {
        INFO(state);
        auto r = hook(lab, state);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        CHECK_THAT(r.err, Catch::Contains(message));
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(lab.snapshot() == before);
    }
}
