// portpub-heal-bench: how soon published traffic is back after `nft flush
// ruleset` with the watcher `up` starts, and what that watcher costs, in
// private namespaces of this process. Each flush is timed from the moment
// the flush command (`nft flush ruleset` through sh) is started to the first
// connection from the external namespace that reaches the container with
// the client's own address (kernel DNAT again, not the proxy, which answers
// meanwhile): an upper bound, the command's own run included, since the
// watcher may be at work before the command has exited. Then the
// watcher at rest: its memory and the CPU time it used over a quiet spell;
// and while another program keeps changing a table of its own: its CPU
// time and how many repairs it ran. First, what the watcher costs `up` and
// `down` of a container alone on the host (the first up starts it, the last
// down waits for it to exit), against --no-watch.
//
//   portpub-heal-bench [--flushes N] [--rest SECONDS] [--churn N] [--cycles N]
//                      [--data FILE]
//   (defaults 20 flushes, 10 s at rest, 500 foreign changes, 10 up/down
//   cycles each way; at most 1,000, 600 s, 100,000 and 1,000)
// Prints Markdown; see docs/BENCHMARKS.md.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../integration/lab.hpp"
#include "bench_data.hpp"

namespace {

using Clock = std::chrono::steady_clock;

long status_kb(int pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    return -1;
}

long pss_kb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Pss:", 0) == 0) return std::stol(line.substr(4));
    return -1;
}

// User and system CPU time of the process so far, in milliseconds.
double cpu_ms(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) {
            stime = std::stol(field);
            break;
        }
    }
    return 1000.0 * static_cast<double>(utime + stime) /
           static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long count_lines(const std::string& file, const std::string& with) {
    std::ifstream in(file);
    long n = 0;
    for (std::string line; std::getline(in, line);)
        n += line.find(with) != std::string::npos;
    return n;
}

int body(int argc, char** argv) {
    int flushes = 20, rest = 10, churn = 500, cycles = 10;
    std::string data;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--flushes" && i + 1 < argc) {
            flushes = std::stoi(argv[++i]);
        } else if (a == "--rest" && i + 1 < argc) {
            rest = std::stoi(argv[++i]);
        } else if (a == "--churn" && i + 1 < argc) {
            churn = std::stoi(argv[++i]);
        } else if (a == "--cycles" && i + 1 < argc) {
            cycles = std::stoi(argv[++i]);
        } else if (a == "--data" && i + 1 < argc) {
            data = argv[++i];
        } else {
            std::cerr << "usage: portpub-heal-bench [--flushes N] [--rest SECONDS] [--churn N] "
                         "[--cycles N] [--data FILE]\n";
            return 2;
        }
    }
    if (flushes < 1 || flushes > 1000) throw std::runtime_error("--flushes: 1 to 1,000");
    if (rest < 1 || rest > 600) throw std::runtime_error("--rest: 1 to 600 seconds");
    if (churn < 0 || churn > 100000) throw std::runtime_error("--churn: 0 to 100,000");
    if (cycles < 1 || cycles > 1000) throw std::runtime_error("--cycles: 1 to 1,000");

    lab::Lab lab(0);
    lab.serve("ext");

    // up and down alone on the host, with the watcher and without.
    auto solo = lab.container("solo");
    std::cout << "`portpub up` and `down` of one container alone on the host (one port), " << cycles
              << " times each way: the first up starts the watcher, the last down waits for it "
                 "to exit\n\n| | up (median) | down (median) |\n|---|---|---|\n";
    for (const bool watch : {true, false}) {
        std::vector<double> up_ms, down_ms;
        for (int i = 0; i < cycles; ++i) {
            std::vector<std::string> extra;
            if (!watch) extra.push_back("--no-watch");
            up_ms.push_back(lab.up(solo, {"8080:80"}, extra).wall_ms);
            auto down = lab.portpub({"down", "--id", "solo"});
            if (down.status != 0) throw std::runtime_error("down failed: " + down.err);
            down_ms.push_back(down.wall_ms);
            if (!lab::watchers().empty()) throw std::runtime_error("a watcher outlived down");
        }
        std::cout << "| " << (watch ? "with the watcher" : "`--no-watch`") << " | "
                  << bench::DataFile::number(bench::median(up_ms), 1) << " ms | "
                  << bench::DataFile::number(bench::median(down_ms), 1) << " ms |\n";
    }
    std::cout << "\n";

    auto web = lab.container("web");
    lab.up(web, {"8080:80", "5353:53/udp"});
    const auto watchers = lab::watchers();
    if (watchers.size() != 1) throw std::runtime_error("up started no watcher");
    const int watcher = watchers.front();
    auto served = [&] {
        auto reply = lab.tcp("ext", lab::kHostIp, 8080, 100);
        return reply && lab::words(*reply).at(0) == "web" &&
               lab::words(*reply).at(1) == lab::kExtIp;
    };
    if (!served()) throw std::runtime_error("web is not served with the client's address");

    std::vector<double> ms, command_ms;
    for (int i = 0; i < flushes; ++i) {
        const auto flushed = Clock::now();
        lab::sh("nft flush ruleset");
        command_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - flushed).count());
        while (!served()) {
            if (Clock::now() - flushed > std::chrono::seconds(10))
                throw std::runtime_error("traffic not back 10 s after flush " +
                                         std::to_string(i + 1));
        }
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - flushed).count());
        // Apart, as flushes by people and services are: no rate limit in play.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    const auto [lo, hi] = std::minmax_element(ms.begin(), ms.end());
    std::cout << "After `nft flush ruleset`, " << flushes
              << " times: traffic from another host back with its own address (kernel DNAT)\n\n"
              << "| flushes | median | fastest | slowest |\n|---|---|---|---|\n"
              << "| " << flushes << " | " << bench::DataFile::number(bench::median(ms), 1)
              << " ms | " << bench::DataFile::number(*lo, 1) << " ms | "
              << bench::DataFile::number(*hi, 1) << " ms |\n\n"
              << "Timed from the start of the flush command; that command alone took "
              << bench::DataFile::number(bench::median(command_ms), 1) << " ms (median).\n\n";

    // At rest: nothing changes.
    const double cpu_before = cpu_ms(watcher);
    std::this_thread::sleep_for(std::chrono::seconds(rest));
    const double rest_cpu = cpu_ms(watcher) - cpu_before;
    const long rss = status_kb(watcher, "VmRSS"), pss = pss_kb(watcher);

    // Another program at work on a table of its own.
    const std::string log = lab.state_dir() + "/watch.log";
    const long repairs_before = count_lines(log, "restored ");
    lab::sh("nft add table inet churn");
    const double churn_cpu_before = cpu_ms(watcher);
    const auto churn_start = Clock::now();
    if (churn > 0)
        lab::sh("for i in $(seq " + std::to_string(churn) +
                "); do nft add chain inet churn c$i; done");
    const double churn_s = std::chrono::duration<double>(Clock::now() - churn_start).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // its last repair
    const double churn_cpu = cpu_ms(watcher) - churn_cpu_before;
    lab::sh("nft delete table inet churn");
    if (!served()) throw std::runtime_error("web is not served after the churn");
    const long mended = count_lines(log, "restored ") - repairs_before;

    std::cout << "The watcher\n\n| | figure |\n|---|---|\n"
              << "| resident memory (VmRSS) | " << rss << " KiB |\n"
              << "| proportional memory (PSS) | " << pss << " KiB |\n"
              << "| CPU time at rest, over " << rest << " s | "
              << bench::DataFile::number(rest_cpu, 0) << " ms |\n"
              << "| CPU time while another program made " << churn << " changes ("
              << bench::DataFile::number(churn_s, 1) << " s) | "
              << bench::DataFile::number(churn_cpu, 0) << " ms |\n"
              << "| repairs that put something back during those changes | " << mended << " |\n";

    bench::DataFile out(data, "portpub-heal-bench: ms from nft flush ruleset to traffic back",
                        {"flush", "ms"});
    for (std::size_t i = 0; i < ms.size(); ++i)
        out.row({bench::DataFile::number(static_cast<int>(i + 1)), bench::DataFile::number(ms[i])});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return lab::guarded_main(body, argc, argv);
}
