// portpub-runtime-bench: container start-to-served latency. The time from
// starting `podman run -d` to the first page fetched through the published
// port from the external client namespace, for
//   (a) Podman with netavark, -p
//   (b) Podman --network none with the portpub OCI hook (hooks.d)
//   (c) Podman's CNI backend with bridge + portmap, -p
//   (d) Podman's CNI backend with portpub as the plugin, -p
// at one port (8080:80) and at a 1,000-port range (8000-8999:80-1079). Every
// run has a fresh lab (private namespaces); `podman rm -f` is timed too.
//
//   portpub-runtime-bench [--runs R] [--portmap-range-runs R] [--only a|b|c|d] [--data FILE]
// (--data: the table's figures also as a data file)
// Prints a Markdown table; see docs/BENCHMARKS.md.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../integration/lab.hpp"
#include "../integration/runtimes.hpp"
#include "bench_data.hpp"

using namespace lab;
using namespace lab::runtimes;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

using bench::median;

struct Case {
    bool range = false;  // the 1,000-port range, else one port
    std::string spec() const { return range ? "8000-8999:80-1079" : "8080:80"; }
    int port() const { return range ? 8000 : 8080; }
};

// Podman set up for scenario `which` in `lab`, and the options of its `run`.
struct Scenario {
    std::optional<Podman> podman;
    std::vector<std::string> options;
};

Scenario prepare(char which, Lab& lab, const Case& c) {
    Scenario s;
    const auto dir = lab_dir(lab);
    switch (which) {
        case 'a':
            s.podman.emplace(lab, "[network]\nnetwork_backend = \"netavark\"\n");
            s.options = {"-p", c.spec()};
            break;
        case 'b': {
            s.podman.emplace(lab);
            auto hook = read_json(fs::path(SOURCE_DIR) / "hooks/portpub.json");
            point_at_build(hook["hook"], lab);
            fs::create_directories(dir / "hooks.d");
            write_file(dir / "hooks.d/portpub.json", hook.dump());
            s.podman->global.insert(s.podman->global.end(),
                                    {"--hooks-dir", (dir / "hooks.d").string()});
            s.options = {"--network",    "none",
                         "--annotation", "io.portpub.ports=" + c.spec(),
                         "--annotation", std::string("io.portpub.subnet=") + kSubnet};
            break;
        }
        case 'c': {
            json conflist = {{"cniVersion", "1.0.0"},
                             {"name", "bench"},
                             {"plugins",
                              {{{"type", "bridge"},
                                {"bridge", "cni-bench0"},
                                {"isGateway", true},
                                {"isDefaultGateway", true},
                                {"ipMasq", true},
                                {"ipam", {{"type", "host-local"}, {"subnet", kSubnet}}}},
                               {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}}}};
            s.podman.emplace(lab, cni_network_conf(lab, conflist, {"/usr/lib/cni"}));
            s.options = {"--network", "bench", "-p", c.spec()};
            break;
        }
        case 'd': {
            auto conflist = read_json(fs::path(SOURCE_DIR) / "hooks/cni/portpub.conflist");
            conflist["name"] = "bench";
            conflist["plugins"][0]["subnet"] = kSubnet;
            conflist["plugins"][0]["stateDir"] = lab.state_dir();
            s.podman.emplace(lab, cni_network_conf(lab, conflist));
            s.options = {"--network", "bench", "-p", c.spec()};
            break;
        }
    }
    return s;
}

struct Run {
    double served_ms = 0, rm_ms = 0;
};

Run one_run(char which, const Case& c) {
    Lab lab(0);
    auto s = prepare(which, lab, c);
    const std::string page = "bench page\n";
    const std::string request = "GET / HTTP/1.0\r\n\r\n";
    // The root filesystem is made before the clock starts.
    const auto args =
        s.podman->httpd_args("web", make_rootfs(s.podman->dir / "web", page), s.options);
    Run r;
    const auto start = Clock::now();
    if ((*s.podman)(args) != 0)
        throw std::runtime_error(std::string("podman run failed in scenario ") + which + ": " +
                                 read_file(s.podman->log));
    // Poll, bounded: 1 ms apart, for at most 120 s.
    bool served = false;
    while (!served && ms_since(start) < 120000) {
        auto reply = lab.echo_tcp("ext", kHostIp, c.port(), request, 2000);
        served = reply && reply->find(page) != std::string::npos;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!served)
        throw std::runtime_error(std::string("scenario ") + which + " never served the page");
    r.served_ms = ms_since(start);
    const auto rm = Clock::now();
    if ((*s.podman)({"rm", "-f", "-t", "0", "web"}) != 0)
        throw std::runtime_error("podman rm failed: " + read_file(s.podman->log));
    r.rm_ms = ms_since(rm);
    return r;
}

const char* name_of(char which) {
    switch (which) {
        case 'a':
            return "(a) podman, netavark 1.4";
        case 'b':
            return "(b) podman --network none + portpub hook";
        case 'c':
            return "(c) podman CNI: bridge + portmap 1.1.1";
        default:
            return "(d) podman CNI: portpub";
    }
}

int measure(int argc, char** argv) {
    int runs = 5, portmap_range_runs = 1;
    std::string only = "abcd", data;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc)
            runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--portmap-range-runs" && i + 1 < argc)
            portmap_range_runs = std::max(0, std::atoi(argv[++i]));
        else if (a == "--only" && i + 1 < argc)
            only = argv[++i];
        else if (a == "--data" && i + 1 < argc)
            data = argv[++i];
        else
            throw std::runtime_error(
                "usage: portpub-runtime-bench [--runs R] "
                "[--portmap-range-runs R] [--only abcd] [--data FILE]");
    }
    isolate_process();
    using D = bench::DataFile;
    D dat(data, "portpub-runtime-bench: podman run -d to first page served, ms",
          {"scenario", "name", "ports", "runs", "served_median_ms", "served_min_ms",
           "served_max_ms", "rm_median_ms"});
    std::cout << "| scenario | ports | runs | start to served, median (min-max) ms | "
                 "podman rm -f, median ms |\n|---|---:|---:|---:|---:|\n";
    for (bool range : {false, true}) {
        for (char which : only) {
            // CNI portmap takes about 30 s for 1,000 ports: fewer runs.
            const int n = range && which == 'c' ? portmap_range_runs : runs;
            if (n == 0) continue;
            std::vector<double> served, rm;
            for (int i = 0; i < n; ++i) {
                auto r = one_run(which, Case{range});
                served.push_back(r.served_ms);
                rm.push_back(r.rm_ms);
            }
            char line[256];
            std::snprintf(line, sizeof line, "| %s | %d | %d | %.0f (%.0f-%.0f) | %.0f |\n",
                          name_of(which), range ? 1000 : 1, n, median(served),
                          *std::min_element(served.begin(), served.end()),
                          *std::max_element(served.begin(), served.end()), median(rm));
            std::cout << line << std::flush;
            dat.row({std::string(1, which), D::quoted(name_of(which)), D::number(range ? 1000 : 1),
                     D::number(n), D::number(median(served), 1),
                     D::number(*std::min_element(served.begin(), served.end()), 1),
                     D::number(*std::max_element(served.begin(), served.end()), 1),
                     D::number(median(rm), 1)});
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return guarded_main(measure, argc, argv);
}
