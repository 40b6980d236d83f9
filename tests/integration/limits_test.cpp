// Inputs at the limits: every port at once, 65,535 -p options, 10,000-character
// values, bytes that are not UTF-8, namespace paths that are something else.
// Each either works (and then serves, and `down` leaves nothing) or fails with
// one line naming the value and what to do, and leaves nothing.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "lab.hpp"

using namespace lab;
using nlohmann::json;

namespace {

// The descriptor limit of the machines the README's figures come from.
void limit_fds() {
    rlimit lim{20000, 20000};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(125);
}

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// `text` is one line of printable UTF-8 (as portpub::printable leaves it).
bool one_printable_line(const std::string& text) {
    if (lines(text) != 1 || text.back() != '\n') return false;
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F || c >= 0x80) return false;  // portpub's own text is ASCII
    }
    return true;
}

// Runs portpub (with the lab's --state-dir) expecting failure with status
// `status`; checks the message is one printable line of at most `max_length`
// characters holding `message`, and that the lab is as it was.
void expect_failure(Lab& lab, const std::vector<std::string>& args, const std::string& message,
                    const std::function<void()>& in_child = {}, std::size_t max_length = 400) {
    const auto before = lab.snapshot();
    auto r = lab.portpub(args, in_child);
    INFO("stderr: " << r.err.substr(0, 2000));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(one_printable_line(r.err));
    CHECK(r.err.size() <= max_length);
    CHECK(r.out.empty());
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

std::vector<std::string> up_args(const std::string& netns, std::vector<std::string> specs,
                                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"up", "--netns", netns, "--subnet", kSubnet};
    for (auto& s : specs) {
        args.push_back("-p");
        args.push_back(std::move(s));
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
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

std::string creating(int pid, const std::string& annotations) {
    return R"({"ociVersion":"1.0.2","id":"web1","status":"creating","pid":)" + std::to_string(pid) +
           R"(,"annotations":{"io.portpub.subnet":"198.51.100.0/24",)" + annotations + "}}";
}

// portpub as a CNI plugin with these CNI_* variables and `config` on stdin.
RunResult cni(const Lab& lab, const std::map<std::string, std::string>& vars,
              const std::string& config) {
    return lab.cni(vars, config);
}

// Serves a few of ports 1-65535, published one to one, from everywhere.
void check_serves_every_port(Lab& lab) {
    CHECK(lab.answering("ext", kHostIp, 80) == "web");
    CHECK(lab.answering("ext", kHostIp2, 81) == "web");
    CHECK(lab.answering("ext", kHostIp6, 81) == "web");
    CHECK(lab.answering("host", "127.0.0.1", 80) == "web");
    CHECK(lab.answering("host", "::1", 81) == "web");
    CHECK(lab.echo_tcp("ext", kHostIp, 7, "seven") == std::optional<std::string>("seven"));
}

}  // namespace

TEST_CASE(
    "65,535 ports in one spec: past the descriptor limit held ports are refused, "
    "unheld they serve",
    "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    // Held, 65,535 ports on 0.0.0.0 and [::] are 131,068 sockets (the
    // proxy's two listeners hold their own port).
    expect_failure(lab, up_args(web, {"1-65535:1-65535"}),
                   "holding the 131068 sockets of these ports, with room for connections, needs "
                   "more file descriptors than the limit of 20000 (RLIMIT_NOFILE); pass "
                   "--no-reserve to publish without holding the ports, or raise the limit "
                   "(ulimit -n)",
                   limit_fds);
    // UDP on loopback and for IPv6 clients takes a socket a port even unheld.
    expect_failure(lab, up_args(web, {"1-65535:1-65535/udp"}, {"--no-reserve"}),
                   "serving the 131070 sockets of these ports, with room for connections, needs "
                   "more file descriptors than the limit of 20000 (RLIMIT_NOFILE); raise the "
                   "limit (ulimit -n), publish fewer UDP ports",
                   limit_fds);

    const auto before = lab.snapshot();
    auto r = lab.portpub(up_args(web, {"1-65535:1-65535"}, {"--no-reserve"}), limit_fds);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(lines(r.out) == 2 * 65535);
    CHECK_THAT(r.out, Catch::StartsWith("1/tcp -> 0.0.0.0:1\n2/tcp -> 0.0.0.0:2\n"));
    CHECK_THAT(r.out, Catch::Contains("65535/tcp -> 0.0.0.0:65535\n1/tcp -> [::]:1\n"));
    CHECK_THAT(r.out, Catch::EndsWith("65535/tcp -> [::]:65535\n"));
    // One element a port for DNAT, one for the whole range toward the proxy.
    CHECK_THAT(sh("nft list map inet portpub proxy4"), Catch::Contains("tcp . 1-65535 : 1"));
    check_serves_every_port(lab);
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("65,535 -p options: held refused past the limit, unheld published and served",
          "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    // Joined (-p1:1), so that the command line stays well under ARG_MAX.
    std::vector<std::string> args = up_args(web, {});
    for (int port = 1; port <= 65535; ++port)
        args.push_back("-p" + std::to_string(port) + ":" + std::to_string(port));
    expect_failure(lab, args, "the limit of 20000 (RLIMIT_NOFILE); pass --no-reserve", limit_fds);
    const auto before = lab.snapshot();
    args.insert(args.end(), {"--no-reserve", "--json"});
    auto r = lab.portpub(args, limit_fds);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(json::parse(r.out)["mappings"].size() == 2 * 65535);
    check_serves_every_port(lab);
    auto ls = lab.portpub({"ls"});
    REQUIRE(ls.status == 0);
    // Consecutive mappings are shown as one range, as docker ps does.
    CHECK_THAT(ls.out, Catch::Contains("0.0.0.0:1-65535->1-65535/tcp"));
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("every port as a range to pick from, and a random port for each of 65,535", "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    // The first free port of 1-65535.
    auto r = lab.up(web, {"1-65535:80"});
    CHECK(r.out == "80/tcp -> 0.0.0.0:1\n80/tcp -> [::]:1\n");
    CHECK(lab.answering("ext", kHostIp, 1) == "web");
    CHECK(lab.answering("host", "127.0.0.1", 1) == "web");
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(diff_lines(before, lab.snapshot()) == "");
    // 65,535 random host ports do not fit in the local port range.
    expect_failure(lab, up_args(web, {"1-65535"}, {"--no-reserve"}),
                   "no free host port left in the local port range 32768-60999 for '1-65535' "
                   "(net.ipv4.ip_local_port_range)");
}

TEST_CASE("a proxy listener with no local port left to choose is named", "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    // Published on one IPv6 address only, the proxy listens on [::] on a
    // kernel-chosen port: none is left when the publication holds the whole
    // local port range.
    sh("echo '40000 40003' > /proc/sys/net/ipv4/ip_local_port_range");
    expect_failure(lab, up_args(web, {"[2001:db8::1]:40000-40003:80-83"}),
                   "the proxy needs a free TCP port on [::] for its listener, and every port of "
                   "net.ipv4.ip_local_port_range (40000-40003) is published or in use");
    // Unheld, the ports are free for the listener.
    lab.up(web, {"[2001:db8::1]:40000-40003:80-83"}, {"--no-reserve"});
    CHECK(lab.answering("ext", kHostIp6, 40001) == "web");
}

TEST_CASE("10,000-character values get a one-line error that quotes them cut", "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    const std::string digits(9995, '8'), letters(10000, 'a');
    expect_failure(lab, up_args(web, {"8080:" + digits}), "(10000 characters)");
    expect_failure(lab, up_args(web, {std::string(10000, ':')}), "(10000 characters)");
    expect_failure(lab, up_args(web, {"80/" + std::string(9997, 't')}), "(10000 characters)");
    expect_failure(lab, up_args(web, {"8080:80"}, {"--id", letters}), "invalid container id 'aaaa");
    expect_failure(lab, up_args(web, {"8080:80"}, {"--bridge", letters}), "invalid --bridge 'aaaa");
    expect_failure(lab, up_args(web, {"8080:80"}, {"--ifname", letters}), "invalid --ifname 'aaaa");
    expect_failure(lab,
                   {"up", "--netns", web, "--subnet", std::string(10000, '1'), "-p", "8080:80"},
                   "invalid --subnet '1111");
    expect_failure(lab, up_args("/run/netns/" + letters, {"8080:80"}),
                   "cannot open network namespace /run/netns/aaaa");
    // Through the OCI hook: a spec of 10,000 characters in the annotation.
    const auto before = lab.snapshot();
    auto r = hook(
        lab, creating(lab.server_pid("web"), R"("io.portpub.ports":"8080:)" + digits + R"(")"));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("invalid port spec '8080:888") &&
                          Catch::Contains("(10000 characters)"));
    CHECK(one_printable_line(r.err));
    CHECK(r.err.size() <= 400);
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("bytes that are not UTF-8, and control characters, get a clear one-line error",
          "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    const int pid = lab.server_pid("web");
    const std::pair<std::string, std::string> states[] = {
        // Not UTF-8: the JSON parser stops at it, and the message shows the byte.
        {creating(pid, "\"io.portpub.ports\":\"8080:80\xff\""), "ill-formed UTF-8 byte"},
        {creating(pid, "\"io.portpub.ports\":\"8080:80\xc3\x28\""), "ill-formed UTF-8 byte"},
        {creating(pid, "\"io.portpub.bridge\":\"br\xe9\",\"io.portpub.ports\":\"80\""),
         "ill-formed UTF-8 byte"},
        // Valid JSON, with a newline, NUL and escape in the spec.
        {creating(pid, R"("io.portpub.ports":"8080:80\n\u0000x")"),
         "invalid port spec '8080:80\\x0a\\x00x'"},
        {creating(pid, R"("io.portpub.ports":"8080:80,\u001b[31m")"),
         "invalid port spec '\\x1b[31m'"},
        {creating(pid, R"("io.portpub.ports":"8080:80","io.portpub.bridge":"br\u00e9")"),
         "invalid --bridge 'br\xc3\xa9'"},
    };
    for (const auto& [state, message] : states) {
        INFO(state);
        auto r = hook(lab, state);
        INFO(r.err);
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains(message));
        CHECK(lines(r.err) == 1);
        CHECK(r.out.empty());
        CHECK(diff_lines(before, lab.snapshot()) == "");
    }
    const auto ill = hook(lab, creating(pid, "\"io.portpub.ports\":\"8080:80\xff\"")).err;
    CHECK_THAT(ill, Catch::Contains("\\xff"));
    CHECK(one_printable_line(ill));

    // The CNI plugin answers with the spec's error JSON, which must be UTF-8.
    auto vars = [&web](const std::string& id, const std::string& netns) {
        return std::map<std::string, std::string>{{"CNI_COMMAND", "ADD"},
                                                  {"CNI_CONTAINERID", id},
                                                  {"CNI_NETNS", netns},
                                                  {"CNI_IFNAME", "eth0"}};
    };
    const std::string good = json{
        {"cniVersion", "1.0.0"},
        {"name", "labnet"},
        {"type", "portpub"},
        {"stateDir",
         lab.state_dir()}}.dump();
    const std::tuple<std::map<std::string, std::string>, std::string, int, std::string>
        cni_cases[] = {
            {vars("c1", web),
             R"({"cniVersion":"1.0.0","name":"net)"
             "\xff"
             R"(","type":"portpub"})",
             6, "not JSON"},
            {vars("c\xff", web), good, 4, "invalid container id 'c\\xff'"},
            {vars("c1", web + "\xff"), good, 4, "CNI_NETNS: namespace path '" + web + "\\xff'"},
        };
    for (const auto& [env, config, code, message] : cni_cases) {
        auto r = cni(lab, env, config);
        INFO(r.out << r.err);
        CHECK(r.status == 1);
        REQUIRE(lines(r.out) == 1);
        auto e = json::parse(r.out);  // throws on bytes that are not UTF-8
        CHECK(e["code"] == code);
        CHECK_THAT(e["msg"].get<std::string>(), Catch::Contains(message));
        CHECK(diff_lines(before, lab.snapshot()) == "");
    }
    // The command line: a namespace path that is not UTF-8 cannot go into a record.
    expect_failure(lab, up_args(web + "\xff", {"8080:80"}),
                   "namespace path '" + web +
                       "\\xff' has control characters or bytes that are "
                       "not UTF-8");
}

TEST_CASE("a --netns that is not a network namespace is named", "[limits]") {
    Lab lab(0);
    auto web = lab.container("web");
    // Outside /run/netns: `ip` opens every file there, and would wait on the FIFO.
    const std::string d = lab.state_dir() + ".paths";
    sh("mkdir " + d + " && mkfifo " + d + "/fifo && ln -s /proc/self/ns/uts " + d +
       "/uts-link && echo plain > " + d + "/file && mkdir " + d + "/dir");
    const std::pair<std::string, std::string> cases[] = {
        {d + "/file", d + "/file is not a namespace file"},
        {d + "/dir", d + "/dir is not a namespace file"},
        {d + "/fifo", d + "/fifo is not a namespace file"},
        {"/dev/null", "/dev/null is not a namespace file"},
        {"/proc/self/ns/mnt", "is a mount namespace, not a network namespace"},
        {"/proc/self/ns/uts", "/proc/self/ns/uts is a UTS namespace, not a network namespace"},
        {d + "/uts-link", "is a UTS namespace, not a network namespace"},
        {"/proc/self/ns/ipc", "is an IPC namespace"},
        {"/proc/self/ns/pid", "is a PID namespace"},
        {"/proc/self/ns/user", "is a user namespace"},
        {"/proc/self/ns/cgroup", "is a cgroup namespace"},
    };
    for (const auto& [path, message] : cases) {
        INFO(path);
        expect_failure(lab, up_args(path, {"8080:80"}), message);
    }
    // The OCI hook's namespace annotation is checked the same way.
    const auto before = lab.snapshot();
    auto r = hook(
        lab, creating(lab.server_pid("web"),
                      R"("io.portpub.ports":"8080:80","io.portpub.netns":"/proc/self/ns/uts")"));
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("/proc/self/ns/uts is a UTS namespace"));
    CHECK(lines(r.err) == 1);
    CHECK(diff_lines(before, lab.snapshot()) == "");
    // A link to a network namespace is one.
    sh("ln -s " + web + " " + d + "/web-link");
    lab.up(d + "/web-link", {"8080:80"});
    CHECK(lab.answering("ext", kHostIp, 8080) == "web");
}
