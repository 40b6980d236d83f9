// portpub watch, run as systemd would (in the foreground until SIGTERM) and
// as `up` starts it, in the lab's host: what a flush, a deleted table, an
// address deleted or iptables rules rewritten take away comes back without
// anyone typing, and what down takes away stays away. One watcher at most,
// none after the last down.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "lab.hpp"
#include "portpub/crash_points.hpp"

using namespace lab;

namespace {

const std::vector<std::string> kWebPorts{"8080:80", "5353:53/udp"};

// ext reaches web through 8080 with its own address: kernel DNAT, not the proxy.
bool served_with_address(Lab& lab) {
    auto reply = lab.tcp("ext", kHostIp, 8080, 300);
    return reply && words(*reply).at(0) == "web" && words(*reply).at(1) == kExtIp;
}

// The ExecStart= command of the repository's unit, pointed at the build and
// the lab's state directory.
std::vector<std::string> unit_command() {
    std::ifstream unit(std::string(SOURCE_DIR) + "/examples/systemd/portpub-watch.service");
    std::string line, command;
    while (std::getline(unit, line))
        if (line.rfind("ExecStart=", 0) == 0) command = line.substr(10);
    std::istringstream words_of(command);
    std::vector<std::string> argv;
    for (std::string w; words_of >> w;)
        argv.push_back(w);
    REQUIRE(argv.size() == 2);
    REQUIRE(argv[0] == "/usr/local/sbin/portpub");
    argv[0] = PORTPUB_BIN;
    return argv;
}

}  // namespace

TEST_CASE("portpub watch puts back what a flush or a reload takes, and nothing down took",
          "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, kWebPorts);
    auto command = unit_command();  // as portpub-watch.service runs it
    command.insert(command.end(), {"--state-dir", lab.state_dir()});
    // Its log in a file, as the journal keeps it.
    const std::string log = lab.state_dir() + "/../watch.log";
    std::string line = "exec";
    for (const auto& word : command)
        line += " '" + word + "'";
    const int watcher = lab.spawn("host", {"sh", "-c", line + " 2>" + log});
    wait_until("the watcher to watch", 5000, [&] {
        return run({"grep", "-q", "watching nftables", log}).status == 0;
    });
    REQUIRE(served_with_address(lab));
    // It took over from the watcher up started, and holds the lock: the next
    // up finds it and starts none.
    CHECK(watchers() == std::vector<int>{watcher});
    lab.up(lab.container("db"), {"9090:80"});
    CHECK(watchers() == std::vector<int>{watcher});
    // A watcher up would start now finds it too, says so, and goes.
    CHECK(sh(std::string("'") + PORTPUB_BIN + "' watch --state-dir '" + lab.state_dir() +
             "' --while-published --ready-fd 3 3>&1") == "another\n");
    CHECK(watchers() == std::vector<int>{watcher});
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK(alive(watcher));  // the unit's watcher runs on

    const char* const changes[] = {
        "nft flush ruleset",  // nftables.service restarting
        "nft delete table inet portpub", "nft delete chain inet portpub prerouting",
        "iptables -P FORWARD DROP && iptables -F FORWARD",  // an iptables-restore of old rules
    };
    for (const char* change : changes) {
        INFO(change);
        sh(change);
        CHECK(eventually(2000, [&] { return served_with_address(lab); }));
        CHECK(lab.portpub({"check"}).status == 0);
    }
    // What down takes away stays away.
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK_FALSE(eventually(500, [&] { return lab.tcp("ext", kHostIp, 8080, 200).has_value(); }));
    CHECK(sh("nft list tables | grep -c portpub || true") == "0\n");
    // SIGTERM ends it.
    ::kill(watcher, SIGTERM);
    CHECK(eventually(2000, [&] { return !alive(watcher); }));
}

namespace {

// What the watcher `up` started wrote.
std::string watch_log(const Lab& lab) {
    return run({"cat", lab.state_dir() + "/watch.log"}).out;
}

// The one watcher of the lab's host; fails the test when there is not one.
int the_watcher(const Lab& lab) {
    const auto pids = watchers();
    INFO("watch.log: " << watch_log(lab)
                       << "processes: " << run({"ps", "-eo", "pid,stat,comm"}).out);
    REQUIRE(pids.size() == 1);
    return pids.front();
}

}  // namespace

TEST_CASE("up starts one watcher, which puts back a flush; the last down stops it", "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    const auto before = lab.snapshot();
    lab.up(web, kWebPorts);
    const int watcher = the_watcher(lab);
    lab.up(db, {"9090:80"});
    CHECK(the_watcher(lab) == watcher);  // the second up found it watching
    // Detached as the proxy is: a session of its own, nothing of up's kept.
    CHECK(sh("ps -o sid= -p " + std::to_string(watcher) + " | tr -d ' '") ==
          std::to_string(watcher) + "\n");
    CHECK(sh("readlink /proc/" + std::to_string(watcher) + "/fd/0") == "/dev/null\n");
    // No pipe of up's (a runtime waiting for a hook's output to end waits on it).
    CHECK(sh("ls -l /proc/" + std::to_string(watcher) + "/fd | grep -c pipe: || true") == "0\n");

    for (const char* change :
         {"nft flush ruleset", "nft -f /dev/stdin <<'EOF'\nflush ruleset\ntable inet other {}\nEOF",
          "nft delete element inet portpub pub4 '{ tcp . 8080 }'"}) {
        INFO(change);
        sh(change);
        CHECK(eventually(2000, [&] { return served_with_address(lab); }));
        CHECK(eventually(2000, [&] { return lab.portpub({"check"}).status == 0; }));
        CHECK(lab.answering("ext", kHostIp, 9090) == "db");
    }
    sh("nft delete table inet other");
    CHECK_THAT(watch_log(lab), Catch::Contains(": table inet portpub, "));

    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(alive(watcher));  // db is still published
    REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
    CHECK_FALSE(alive(watcher));  // gone when the last down returns
    CHECK(diff_lines(before, lab.snapshot()) == "");
}

TEST_CASE("up --no-watch starts none, and nothing puts a flush back", "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    lab.up(web, kWebPorts, {"--no-watch"});
    CHECK(watchers().empty());
    sh("nft flush ruleset");
    CHECK_FALSE(eventually(500, [&] { return served_with_address(lab); }));
    CHECK(lab.portpub({"check"}).status == 1);
}

TEST_CASE("a watcher killed with SIGKILL: the next up starts another, and nothing was lost",
          "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    lab.up(web, kWebPorts);
    const int first = the_watcher(lab);
    ::kill(first, SIGKILL);
    wait_until("the watcher to be gone", 2000, [&] { return !alive(first); });
    sh("nft flush ruleset");  // no one watches now
    lab.up(db, {"9090:80"});
    const int second = the_watcher(lab);
    CHECK(second != first);
    // That up put back web's part of the table; the new watcher mends the next flush.
    CHECK(served_with_address(lab));
    sh("nft flush ruleset");
    CHECK(eventually(2000, [&] { return served_with_address(lab); }));
    CHECK(eventually(2000, [&] { return lab.answering("ext", kHostIp, 9090) == "db"; }));
}

TEST_CASE("two ups at once start one watcher", "[watch]") {
    Lab lab(0);
    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        auto a = lab.container("a" + std::to_string(round));
        auto b = lab.container("b" + std::to_string(round));
        const std::string up = std::string("'") + PORTPUB_BIN + "' up --state-dir '" +
                               lab.state_dir() + "' --subnet " + kSubnet + " --netns ";
        sh(up + a + " -p " + std::to_string(8100 + round) + ":80 >/dev/null & " + up + b + " -p " +
           std::to_string(8200 + round) + ":80 >/dev/null & wait");
        CHECK(watchers().size() == 1);
        REQUIRE(lab.portpub({"down", "--netns", a}).status == 0);
        REQUIRE(lab.portpub({"down", "--netns", b}).status == 0);
        CHECK(watchers().empty());
    }
}

TEST_CASE("the watcher puts back a bridge address deleted by hand", "[watch]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    lab.up(web, kWebPorts);
    sh("ip addr flush dev portpub0");
    // Outbound: the container's default route is the bridge's address.
    CHECK(eventually(2000, [&] { return lab.tcp("web", kExtIp, 80, 300).has_value(); }));
    CHECK(sh("ip -o -4 addr show dev portpub0 | wc -l") == "1\n");
    CHECK(served_with_address(lab));
    CHECK(lab.portpub({"check"}).status == 0);
}

TEST_CASE("the watcher puts back the forwards of portpub forward, and not one forward rm took",
          "[watch]") {
    Lab lab(0);
    lab.serve("host");  // a program of this host on 80
    const std::string config = lab.state_dir() + "/../forwards.json";
    auto forward = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "forward");
        args.insert(args.end(), {"--config", config});
        return lab.portpub(args);
    };
    REQUIRE(forward({"-p", "9000:80"}).status == 0);
    REQUIRE(forward({"-p", "9001:81"}).status == 0);
    const int watcher = the_watcher(lab);
    auto forwarded = [&](int port) {
        auto reply = lab.tcp("ext", kHostIp, port, 300);
        return reply && words(*reply).at(0) == "host";
    };
    REQUIRE(forwarded(9000));
    sh("nft flush ruleset");
    CHECK(eventually(2000, [&] { return forwarded(9000) && forwarded(9001); }));
    REQUIRE(forward({"rm", "9001:81"}).status == 0);
    sh("nft flush ruleset");
    CHECK(eventually(2000, [&] { return forwarded(9000); }));
    CHECK_FALSE(eventually(300, [&] { return forwarded(9001); }));
    REQUIRE(forward({"rm", "9000:80"}).status == 0);
    CHECK_FALSE(alive(watcher));
}

TEST_CASE("a watcher killed at any step of its repair: the next one finishes it", "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    auto db = lab.container("db");
    sh("iptables -P FORWARD DROP");  // so that up adds accepts beside it
    const auto before = lab.snapshot();
    for (const auto& [step, name] : portpub::kSteps) {
        const std::string at(name);
        if (at.rfind("restore:", 0) != 0) continue;
        // A flush leaves the socket programs be: loopback_test.cpp kills a
        // restore that puts them back.
        if (at == "restore:rewrite") continue;
        INFO("the watcher killed after " << at);
        // The watcher inherits up's environment: it is the one that crashes.
        auto up = lab.portpub(
            {"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80", "-p", "5353:53/udp"},
            [&] { ::setenv(portpub::kCrashAtVariable, at.c_str(), 1); });
        INFO(up.err);
        REQUIRE(up.status == 0);
        const int watcher = the_watcher(lab);
        // What the repair puts back reaches every step: the bridge's
        // address, the table, the proxy, the accepts.
        sh("kill -9 " + std::to_string(*lab.proxy_pid("web")) +
           " && iptables -F FORWARD && ip addr flush dev portpub0 && "
           "nft delete table inet portpub");
        wait_until("the watcher to be killed at " + at, 5000, [&] { return !alive(watcher); });
        // The next command starts the next watcher, which finishes the repair.
        lab.up(db, {"9090:80"});
        CHECK(eventually(
            3000, [&] { return served_with_address(lab) && lab.portpub({"check"}).status == 0; }));
        CHECK(lab.answering("host", "127.0.0.1", 8080) == "web");
        CHECK(lab.answering("ext", kHostIp, 9090) == "db");
        CHECK(proxies().size() == 2);
        REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
        REQUIRE(lab.portpub({"down", "--id", "db"}).status == 0);
        CHECK(diff_lines(before, lab.snapshot()) == "");
    }
}

TEST_CASE("a program that takes the table away as soon as it is back: the watcher slows down",
          "[watch]") {
    Lab lab(0);
    lab.serve("ext");
    auto web = lab.container("web");
    lab.up(web, kWebPorts);
    // For 3 s, the table goes within 10 ms of coming back.
    sh("end=$(($(date +%s%N) + 3000000000)); while [ $(date +%s%N) -lt $end ]; do "
       "nft delete table inet portpub 2>/dev/null; sleep 0.01; done");
    const auto log = watch_log(lab);
    std::size_t repairs = 0;
    for (std::size_t at = log.find("restored web"); at != std::string::npos;
         at = log.find("restored web", at + 1))
        ++repairs;
    INFO(log);
    // Unpaced, a repair every 10-100 ms: 30 or more in 3 s.
    CHECK(repairs >= 5);
    CHECK(repairs <= 15);
    CHECK_THAT(log, Catch::Contains("something takes portpub's rules away again and again"));
    // Once it stops, the next repair comes after the wait (at most 10 s).
    CHECK(eventually(12000, [&] { return served_with_address(lab); }));
}

TEST_CASE("a down right after a repair killed while it restarted a proxy leaves no proxy",
          "[watch]") {
    Lab lab(0);
    auto web = lab.container("web");
    const auto before = lab.snapshot();
    auto up = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", "8080:80"},
                          [] { ::setenv(portpub::kCrashAtVariable, "restore:proxy-started", 1); });
    REQUIRE(up.status == 0);
    const int watcher = the_watcher(lab);
    // The proxy killed, and a change that wakes the watcher: it starts a new
    // proxy and is killed before it writes its pid down.
    sh("kill -9 " + std::to_string(*lab.proxy_pid("web")) + " && nft flush ruleset");
    wait_until("the watcher to be killed", 5000, [&] { return !alive(watcher); });
    REQUIRE(proxies().size() == 1);  // the new one, in no record
    REQUIRE(lab.portpub({"down", "--id", "web"}).status == 0);
    CHECK(proxies().empty());
    CHECK(diff_lines(before, lab.snapshot()) == "");
}
