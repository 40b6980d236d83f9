// portpub-docker-bench: `docker run -p` and `docker rm -f` of one container
// publishing N TCP ports, with Debian's docker.io (the real engine, confined
// to a lab: see lab::runtimes::Docker), against `portpub up` and `down` of the
// same ports in the same run and the same namespaces: wall time, the
// processes that hold the ports (docker-proxy; portpub's proxy) with their
// proportional memory (PSS), and what each adds to the firewall (iptables
// rules; nftables elements).
//
//   portpub-docker-bench [--runs R] [--big-runs R] [--ports 1,10,100,1000] [--data FILE]
// (--big-runs: runs at 1,000 ports and more, where Docker takes a minute a run)
// Prints a Markdown table; see docs/BENCHMARKS.md.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../integration/lab.hpp"
#include "../integration/runtimes.hpp"
#include "bench_data.hpp"

using namespace lab;
using lab::runtimes::Docker;
namespace fs = std::filesystem;

namespace {

using bench::median;

void require(const RunResult& r, const std::string& what) {
    if (r.status != 0) throw std::runtime_error(what + " failed: " + r.err + r.out);
}

// The processes named `comm` in this process's network namespace, and the
// sum of their PSS in KiB.
struct Holders {
    int count = 0;
    long pss_kib = 0;
};
Holders holders(const std::string& comm) {
    struct stat own {};
    ::stat("/proc/self/ns/net", &own);
    Holders h;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream c(entry.path() / "comm");
        std::string got;
        if (!std::getline(c, got) || got != comm) continue;
        struct stat ns {};
        if (::stat((entry.path() / "ns/net").c_str(), &ns) != 0 || ns.st_ino != own.st_ino)
            continue;
        ++h.count;
        std::ifstream rollup(entry.path() / "smaps_rollup");
        for (std::string line; std::getline(rollup, line);)
            if (line.rfind("Pss:", 0) == 0) h.pss_kib += std::stol(line.substr(4));
    }
    return h;
}

int iptables_rules() {
    auto r = run({"sh", "-c", "{ iptables-save; ip6tables-save; } | grep -c '^-A' || true"});
    return std::stoi(r.out.empty() ? "0" : r.out);
}

// Elements of every set and map of portpub's table.
int nft_elements() {
    auto r = run({"nft", "-j", "list", "table", "inet", "portpub"});
    if (r.status != 0) throw std::runtime_error("nft -j list table inet portpub: " + r.err);
    int n = 0;
    const auto doc = nlohmann::json::parse(r.out);  // kept: the loop reads into it
    for (const auto& item : doc.at("nftables"))
        for (const std::string kind : {"set", "map"})
            if (auto it = item.find(kind); it != item.end())
                if (auto elem = it->find("elem"); elem != it->end())
                    n += static_cast<int>(elem->size());
    return n;
}

std::string spec(int ports) {
    if (ports == 1) return "20000:8000";
    return "20000-" + std::to_string(20000 + ports - 1) + ":8000-" +
           std::to_string(8000 + ports - 1);
}

struct Row {
    int ports = 0;
    std::vector<double> docker_run, docker_rm, portpub_up, portpub_down;
    Holders docker, portpub;
    int docker_rules = 0, portpub_rules = 0, portpub_elements = 0;
};

std::string ms(double v) {
    char buf[32];
    if (v >= 1000)
        std::snprintf(buf, sizeof buf, "%.1f s", v / 1000);
    else
        std::snprintf(buf, sizeof buf, "%.0f ms", v);
    return buf;
}

std::string mib(long kib) {
    char buf[32];
    if (kib >= 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.2f GiB", kib / 1048576.0);
    else
        std::snprintf(buf, sizeof buf, "%.1f MiB", kib / 1024.0);
    return buf;
}

int body(int argc, char** argv) {
    int runs = 3, big_runs = 1;
    std::vector<int> counts{1, 10, 100, 1000};
    std::string data_path;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--runs") {
            runs = std::stoi(next());
        } else if (a == "--big-runs") {
            big_runs = std::stoi(next());
        } else if (a == "--ports") {
            counts.clear();
            std::stringstream list(next());
            for (std::string n; std::getline(list, n, ',');)
                counts.push_back(std::stoi(n));
        } else if (a == "--data") {
            data_path = next();
        } else {
            throw std::runtime_error(
                "usage: portpub-docker-bench [--runs R] [--big-runs R] [--ports N,...] [--data "
                "FILE]");
        }
    }
    Lab lab(0);
    auto web = lab.container("web");
    Docker docker(lab);
    std::vector<Row> rows;
    for (int ports : counts) {
        Row row;
        row.ports = ports;
        const int n = ports >= 1000 ? big_runs : runs;
        for (int r = 0; r < n; ++r) {
            const int rules_before = iptables_rules();
            auto started = docker.run_httpd(spec(ports));
            row.docker_run.push_back(started.wall_ms);
            row.docker = holders("docker-proxy");
            row.docker_rules = iptables_rules() - rules_before;
            const auto id = docker.containers().at(0);
            auto removed = docker.cli({"rm", "-f", id});
            require(removed, "docker rm -f");
            row.docker_rm.push_back(removed.wall_ms);

            const int before = iptables_rules();
            auto up = lab.portpub({"up", "--netns", web, "--subnet", kSubnet, "-p", spec(ports)});
            require(up, "portpub up");
            row.portpub_up.push_back(up.wall_ms);
            row.portpub = holders("portpub-proxy");
            row.portpub_rules = iptables_rules() - before;
            row.portpub_elements = nft_elements();
            auto down = lab.portpub({"down", "--id", "web"});
            require(down, "portpub down");
            row.portpub_down.push_back(down.wall_ms);
        }
        std::cerr << "docker-bench: " << ports << " ports, " << n << " runs\n";
        rows.push_back(row);
    }

    bench::DataFile data(
        data_path,
        "docker run -p / rm -f (docker.io 20.10) against portpub up / down, "
        "medians in ms; processes holding the ports, their PSS in KiB; "
        "iptables rules and nft elements added",
        {"ports", "docker_run_ms", "docker_rm_ms", "docker_proxies", "docker_pss_kib",
         "docker_rules", "portpub_up_ms", "portpub_down_ms", "portpub_proxies", "portpub_pss_kib",
         "portpub_rules", "portpub_elements"});
    std::cout << "| ports | `docker run -p` | `docker rm -f` | docker-proxy processes (PSS) | "
                 "iptables rules added | `portpub up` | `portpub down` | portpub proxy "
                 "processes (PSS) | iptables rules + nft elements added |\n"
              << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& r : rows) {
        std::cout << "| " << r.ports << " | " << ms(median(r.docker_run)) << " | "
                  << ms(median(r.docker_rm)) << " | " << r.docker.count << " ("
                  << mib(r.docker.pss_kib) << ") | " << r.docker_rules << " | "
                  << ms(median(r.portpub_up)) << " | " << ms(median(r.portpub_down)) << " | "
                  << r.portpub.count << " (" << mib(r.portpub.pss_kib) << ") | " << r.portpub_rules
                  << " + " << r.portpub_elements << " |\n";
        using D = bench::DataFile;
        data.row({D::number(r.ports), D::number(median(r.docker_run), 1),
                  D::number(median(r.docker_rm), 1), D::number(r.docker.count),
                  D::number(r.docker.pss_kib), D::number(r.docker_rules),
                  D::number(median(r.portpub_up), 1), D::number(median(r.portpub_down), 1),
                  D::number(r.portpub.count), D::number(r.portpub.pss_kib),
                  D::number(r.portpub_rules), D::number(r.portpub_elements)});
    }
    std::cout << "\nMedians of " << runs << " runs (" << big_runs
              << " at 1,000 ports and more); the same namespaces, one after the other. "
                 "portpub's iptables rules are its two accepts in FORWARD.\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return guarded_main(body, argc, argv);
}
