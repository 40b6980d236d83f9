// portpub-soak: many up/down cycles of one container while another
// container's proxy carries loopback traffic the whole time, in private
// namespaces of this process. Samples, every tenth of the run, the resident
// memory and open descriptors of the steady proxy, the peak memory of the
// portpub commands and of the cycling container's proxy; at the end, checks
// that nothing is left (links, rules, records, proxies).
//
//   portpub-soak [--cycles N] [--data FILE]   (default 1,000 cycles; at most 100,000)
// (--data: the samples also as a data file)
// Prints Markdown; see docs/BENCHMARKS.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../integration/lab.hpp"
#include "bench_data.hpp"

namespace {

using Clock = std::chrono::steady_clock;

long rss_kb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

struct Sample {
    int cycle = 0;
    long steady_rss = 0, steady_fds = 0;
    long up_rss = 0, down_rss = 0, cycling_proxy_rss = 0;  // peaks over the interval
    long requests = 0, failures = 0;                       // steady traffic so far
};

int body(int argc, char** argv) {
    int cycles = 1000;
    std::string data;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--cycles" && i + 1 < argc) {
            cycles = std::stoi(argv[++i]);
        } else if (a == "--data" && i + 1 < argc) {
            data = argv[++i];
        } else {
            std::cerr << "usage: portpub-soak [--cycles N] [--data FILE]\n";
            return 2;
        }
    }
    if (cycles < 10 || cycles > 100000) throw std::runtime_error("--cycles: 10 to 100,000");

    lab::Lab lab(0);
    auto steady = lab.container("steady");
    auto cycling = lab.container("cycling");
    const auto before = lab.snapshot();
    lab.up(steady, {"8080:80"});
    const int steady_proxy = *lab.proxy_pid("steady");

    // The steady proxy's traffic: one loopback connection after another, in
    // a thread, for as long as the cycles run.
    std::atomic<bool> stop{false};
    std::atomic<long> requests{0}, failures{0};
    std::thread traffic([&] {
        while (!stop) {
            (lab.answering("host", "127.0.0.1", 8080, 2000) == "steady" ? requests : failures)++;
        }
    });

    std::vector<Sample> samples;
    Sample s;
    long cycling_requests = 0, cycling_failures = 0;
    const int every = cycles / 10;
    const auto start = Clock::now();
    samples.push_back({0, rss_kb(steady_proxy), lab::fd_count(steady_proxy), 0, 0, 0, 0, 0});
    for (int i = 1; i <= cycles; ++i) {
        auto up = lab.up(cycling, {"9090:80", "5353:53/udp"});
        s.up_rss = std::max(s.up_rss, up.max_rss_kb);
        if (auto pid = lab.proxy_pid("cycling")) {
            ++cycling_requests;
            if (lab.answering("host", "127.0.0.1", 9090) != "cycling") ++cycling_failures;
            s.cycling_proxy_rss = std::max(s.cycling_proxy_rss, rss_kb(*pid));
        }
        if (lab.answering("ext", lab::kHostIp, 9090) != "cycling") ++cycling_failures;
        auto down = lab.portpub({"down", "--id", "cycling"});
        if (down.status != 0) throw std::runtime_error("down failed: " + down.err);
        s.down_rss = std::max(s.down_rss, down.max_rss_kb);
        if (i % every == 0) {
            s.cycle = i;
            s.steady_rss = rss_kb(steady_proxy);
            s.steady_fds = lab::fd_count(steady_proxy);
            s.requests = requests;
            s.failures = failures;
            samples.push_back(s);
            s = Sample{};
        }
    }
    stop = true;
    traffic.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

    std::printf(
        "%d up/down cycles of a container publishing 9090/tcp and 5353/udp (a request\n"
        "through its proxy and one from the external namespace each cycle), while the\n"
        "proxy of another container served %ld loopback connections (%ld failed);\n"
        "%ld cycle requests, %ld failed; %.0f s.\n\n",
        cycles, requests.load(), failures.load(), cycling_requests * 2, cycling_failures, seconds);
    std::printf(
        "| after cycle | steady proxy RSS (KiB) | steady proxy fds | up peak RSS (KiB) "
        "| down peak RSS (KiB) | cycling proxy RSS (KiB) | steady requests |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    using D = bench::DataFile;
    D dat(data,
          "portpub-soak: " + std::to_string(cycles) +
              " up/down cycles; peaks over each interval; 0 = no figure yet",
          {"after_cycle", "steady_proxy_rss_kib", "steady_proxy_fds", "up_peak_rss_kib",
           "down_peak_rss_kib", "cycling_proxy_rss_kib", "steady_requests", "steady_failures"});
    for (const auto& x : samples) {
        std::printf("| %d | %ld | %ld | %ld | %ld | %ld | %ld |\n", x.cycle, x.steady_rss,
                    x.steady_fds, x.up_rss, x.down_rss, x.cycling_proxy_rss, x.requests);
        dat.row({D::number(x.cycle), D::number(x.steady_rss), D::number(x.steady_fds),
                 D::number(x.up_rss), D::number(x.down_rss), D::number(x.cycling_proxy_rss),
                 D::number(x.requests), D::number(x.failures)});
    }

    auto down = lab.portpub({"down", "--id", "steady"});
    if (down.status != 0) throw std::runtime_error("down failed: " + down.err);
    const auto left = lab::diff_lines(before, lab.snapshot());
    std::printf("\nLeft behind after the last down: %s\n",
                left.empty() ? "nothing (links, addresses, routes, ruleset, ip_forward, "
                               "records, logs and proxies as before)"
                             : ("\n" + left).c_str());
    return left.empty() && failures == 0 && cycling_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    return lab::guarded_main(body, argc, argv);
}
