// Many portpub processes at once, as a runtime starting and stopping many
// containers runs its hooks: each gets its own address and ports, and
// nothing is left when they are all down.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lab.hpp"

using namespace lab;

namespace {

// Runs every command at once, each a process of its own, and waits for all.
std::vector<RunResult> run_together(const Lab& lab,
                                    const std::vector<std::vector<std::string>>& commands) {
    std::vector<RunResult> results(commands.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < commands.size(); ++i)
        threads.emplace_back([&, i] { results[i] = lab.portpub(commands[i]); });
    for (auto& t : threads)
        t.join();
    return results;
}

}  // namespace

TEST_CASE(
    "50 containers up and down at once, 10 rounds: distinct addresses, all reachable, "
    "nothing left",
    "[concurrency]") {
    constexpr int kContainers = 50, kRounds = 10;
    Lab lab(0);
    std::vector<std::string> netns;
    for (int i = 0; i < kContainers; ++i)
        netns.push_back(lab.container("c" + std::to_string(i)));
    const auto before = lab.snapshot();

    for (int round = 0; round < kRounds; ++round) {
        INFO("round " << round);
        std::vector<std::vector<std::string>> ups, downs;
        for (int i = 0; i < kContainers; ++i) {
            ups.push_back({"up", "--netns", netns[i], "--subnet", kSubnet, "-p",
                           std::to_string(10000 + i) + ":80"});
            downs.push_back({"down", "--id", "c" + std::to_string(i)});
        }
        for (const auto& r : run_together(lab, ups))
            REQUIRE(r.status == 0);

        auto ls = nlohmann::json::parse(lab.portpub({"ls", "--json"}).out);
        REQUIRE(ls.size() == kContainers);
        std::set<std::string> addresses;
        for (const auto& p : ls)
            addresses.insert(p.at("address").get<std::string>());
        CHECK(addresses.size() == kContainers);  // no address given twice
        CHECK(proxies().size() == kContainers);
        for (int i = 0; i < kContainers; ++i)
            CHECK(lab.answering("ext", kHostIp, 10000 + i) == "c" + std::to_string(i));
        // Loopback, through each container's own proxy, for a few.
        for (int i = 0; i < kContainers; i += 17)
            CHECK(lab.answering("host", "127.0.0.1", 10000 + i) == "c" + std::to_string(i));
        auto check = lab.portpub({"check"});
        CHECK(check.status == 0);

        for (const auto& r : run_together(lab, downs)) {
            CHECK(r.status == 0);
            CHECK(r.err == "");
        }
        // No map element, veth, record, proxy, address, rule left.
        REQUIRE(diff_lines(before, lab.snapshot()) == "");
    }
}

TEST_CASE("a host port asked for by two containers at once goes to exactly one", "[concurrency]") {
    Lab lab(0);
    auto a = lab.container("a");
    auto b = lab.container("b");
    const auto before = lab.snapshot();
    for (int attempt = 0; attempt < 5; ++attempt) {
        INFO("attempt " << attempt);
        auto results = run_together(
            lab, {{"up", "--netns", a, "--subnet", kSubnet, "-p", "8080:80", "-p", "9000:81"},
                  {"up", "--netns", b, "--subnet", kSubnet, "-p", "7000:80", "-p", "8080:80"}});
        const int winner = results[0].status == 0 ? 0 : 1;
        const auto& loser = results[1 - winner];
        const std::string names[] = {"a", "b"};
        CHECK(results[winner].status == 0);
        CHECK(loser.status == 1);
        CHECK(loser.err == "portpub: host port 8080/tcp is already published by container " +
                               names[winner] +
                               " (as 0.0.0.0:8080); choose another host port or run 'portpub "
                               "down --id " +
                               names[winner] + "'\n");
        CHECK(lab.answering("ext", kHostIp, 8080) == names[winner]);
        // The loser changed nothing: its other port is not published.
        CHECK_FALSE(lab.tcp("ext", kHostIp, winner == 0 ? 7000 : 9000, 500));
        REQUIRE(lab.portpub({"down", "--id", names[winner]}).status == 0);
        REQUIRE(diff_lines(before, lab.snapshot()) == "");
    }
}
