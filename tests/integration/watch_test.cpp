// portpub watch, run as systemd would (in the foreground until SIGTERM), in
// the lab's host: what a flush, a deleted table or iptables rules rewritten
// take away comes back without anyone typing, and what down takes away stays
// away.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "lab.hpp"

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
