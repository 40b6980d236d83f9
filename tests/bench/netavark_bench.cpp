// portpub-netavark-bench: wall time of Debian 12's netavark (1.4, the
// network backend of Podman 4.3) for one container publishing N TCP ports,
// N separate mappings H:H as in portpub-bench. netavark is driven the way
// Podman drives it: `netavark --config DIR --rootless false setup NETNS`
// with the network options JSON on stdin, then `teardown` with the same
// options. Everything happens in a private network and mount namespace of
// this process (the lab of the other benchmarks); NETAVARK_FW=iptables, so
// that netavark never looks for a firewalld on the machine's D-Bus.
//
// Each N is checked once: after its first setup, a TCP connection from the
// lab's external namespace to the host's address and the first and the last
// published port must reach the server in the container, and after its
// teardown the first port must no longer reach it. A failed check stops the
// benchmark, so that an error is never timed as a fast run.
//
//   portpub-netavark-bench [--runs R] [--big-runs R] [--ports N,N,...] [--data FILE]
//                          [--netavark PATH]
// (--big-runs: runs for 1,000 ports and more, which take minutes each;
// --data: the table's figures also as a data file for scripts/charts.gp)
// Prints a Markdown table; see docs/BENCHMARKS.md.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../integration/lab.hpp"
#include "bench_data.hpp"

using lab::RunResult;
using nlohmann::json;

namespace {

std::string g_netavark = "/usr/lib/podman/netavark";
const char* const kConfigDir = "/run/netavark-bench";  // the lab's private /run
const char* const kOptionsFile = "/run/netavark-bench-options.json";
const int kFirstPort = 10000;

using bench::median;

// The options Podman 4.3 hands netavark for `podman run --network bench -p
// ...`: one bridge network on the lab's subnet, a static address per
// container, no DNS (no aardvark-dns). The address comes with a MAC address
// of its own (Podman's --mac-address), the same in every run: otherwise the
// host's neighbour entry would still point at the previous run's veth, and
// the check of a run would wait for it to go stale.
json network_options(const std::string& name, const std::string& ip, const std::string& mac,
                     int ports) {
    json mappings = json::array();
    for (int i = 0; i < ports; ++i)
        mappings.push_back({{"host_ip", ""},
                            {"container_port", kFirstPort + i},
                            {"host_port", kFirstPort + i},
                            {"range", 1},
                            {"protocol", "tcp"}});
    std::string id = name;
    id.resize(64, '0');
    return {{"container_id", id},
            {"container_name", name},
            {"port_mappings", mappings},
            {"networks",
             {{"bench", {{"static_ips", {ip}}, {"static_mac", mac}, {"interface_name", "eth0"}}}}},
            {"network_info",
             {{"bench",
               {{"name", "bench"},
                {"id", std::string(64, 'b')},
                {"driver", "bridge"},
                {"network_interface", "netavark0"},
                {"subnets", {{{"subnet", lab::kSubnet}, {"gateway", "198.51.100.1"}}}},
                {"ipv6_enabled", false},
                {"internal", false},
                {"dns_enabled", false},
                {"ipam_options", {{"driver", "host-local"}}}}}}}};
}

RunResult netavark(const std::string& command, const std::string& netns, const json& options) {
    std::ofstream(kOptionsFile) << options.dump();
    return lab::run({g_netavark, "--config", kConfigDir, "--rootless", "false", command, netns},
                    [] {
                        ::setenv("NETAVARK_FW", "iptables", 1);
                        int fd = ::open(kOptionsFile, O_RDONLY);
                        ::dup2(fd, 0);
                    });
}

void require(const RunResult& r, const std::string& what) {
    if (r.status != 0)
        throw std::runtime_error("netavark " + what + " failed (" + std::to_string(r.status) +
                                 "): " + r.err + r.out);
}

struct Figures {
    double setup_ms = 0, teardown_ms = 0;
    long rss_kb = 0;
    int runs = 0;
};

// The port answers from the external namespace with the container's server.
bool reaches(lab::Lab& lab, int port, int timeout_ms) {
    return lab.answering("ext", lab::kHostIp, port, timeout_ms) == "nv";
}

Figures bench_netavark(lab::Lab& lab, const std::string& netns, int ports, int runs) {
    const auto options = network_options("nv", "198.51.100.2", "02:00:00:00:00:02", ports);
    Figures f;
    std::vector<double> setup, teardown;
    for (int run = 0; run < runs; ++run) {
        auto s = netavark("setup", netns, options);
        require(s, "setup with " + std::to_string(ports) + " ports");
        setup.push_back(s.wall_ms);
        f.rss_kb = std::max(f.rss_kb, s.max_rss_kb);
        if (run == 0)
            for (int port : {kFirstPort, kFirstPort + ports - 1})
                if (!reaches(lab, port, 3000))
                    throw std::runtime_error("netavark setup with " + std::to_string(ports) +
                                             " ports: port " + std::to_string(port) +
                                             " does not reach the container from outside");
        auto t = netavark("teardown", netns, options);
        require(t, "teardown with " + std::to_string(ports) + " ports");
        teardown.push_back(t.wall_ms);
        if (run == 0 && reaches(lab, kFirstPort, 500))
            throw std::runtime_error("netavark teardown with " + std::to_string(ports) +
                                     " ports: port " + std::to_string(kFirstPort) +
                                     " still reaches the container");
    }
    f.setup_ms = median(setup);
    f.teardown_ms = median(teardown);
    f.runs = runs;
    return f;
}

std::string ms(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
    return buf;
}

std::vector<int> port_list(const std::string& text) {
    std::vector<int> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
        const int n = std::atoi(item.c_str());
        if (n < 1 || n > 20000) throw std::runtime_error("--ports: each N from 1 to 20,000");
        out.push_back(n);
    }
    return out;
}

}  // namespace

int run(int argc, char** argv) {
    int runs = 3, big_runs = 1;
    std::vector<int> counts{1, 10, 100, 1000};
    std::string data;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--runs" && has_value)
            runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--big-runs" && has_value)
            big_runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--ports" && has_value)
            counts = port_list(argv[++i]);
        else if (a == "--data" && has_value)
            data = argv[++i];
        else if (a == "--netavark" && has_value)
            g_netavark = argv[++i];
        else {
            std::cerr << "usage: portpub-netavark-bench [--runs R] [--big-runs R] "
                         "[--ports N,N,...] [--data FILE] [--netavark PATH]\n";
            return 2;
        }
    }
    if (::access(g_netavark.c_str(), X_OK) != 0) {
        std::cerr << "bench: " << g_netavark
                  << " is missing (scripts/setup.sh --bench installs Debian's netavark)\n";
        return 1;
    }
    lab::Lab lab(0);  // private namespaces; nothing here touches the machine's own
    auto netns = lab.container("nv");
    // The container's server on the first and last port of every N.
    std::set<int> server_ports;
    for (int n : counts)
        server_ports.insert({kFirstPort, kFirstPort + n - 1});
    std::vector<std::string> server{ECHO_BIN, "nv"};
    for (int port : server_ports)
        server.insert(server.end(), {"--tcp", std::to_string(port)});
    lab.spawn("nv", server);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its sockets bound

    // The first container creates the bridge and the iptables chains.
    auto first = bench_netavark(lab, netns, 1, 1);
    std::cout << "First container (creates the bridge; its teardown deletes it), 1 port: setup "
              << ms(first.setup_ms) << " ms, teardown " << ms(first.teardown_ms) << " ms.\n\n";

    // Steady state from here on: another container on the network keeps the
    // bridge, as in the portpub and CNI figures.
    auto resident = lab.container("resident");
    require(netavark("setup", resident,
                     network_options("resident", "198.51.100.3", "02:00:00:00:00:03", 0)),
            "setup of the resident container");

    bench::DataFile dat(
        data, "portpub-netavark-bench: netavark " + g_netavark + ", medians of wall-clock ms",
        {"ports", "runs", "netavark_setup_ms", "netavark_teardown_ms", "netavark_setup_rss_kib"});
    using D = bench::DataFile;
    std::cout << "| ports | runs | netavark setup (ms) | netavark teardown (ms) | "
                 "setup peak RSS (KiB) |\n|---:|---:|---:|---:|---:|\n";
    for (int ports : counts) {
        auto f = bench_netavark(lab, netns, ports, ports >= 1000 ? big_runs : runs);
        std::cout << "| " << ports << " | " << f.runs << " | " << ms(f.setup_ms) << " | "
                  << ms(f.teardown_ms) << " | " << f.rss_kb << " |\n"
                  << std::flush;
        dat.row({D::number(ports), D::number(f.runs), D::number(f.setup_ms),
                 D::number(f.teardown_ms), D::number(f.rss_kb)});
    }
    std::cout << "\nnetavark: median of " << runs << " runs (" << big_runs
              << " from 1,000 ports on), N separate -p H:H mappings, iptables driver "
                 "(nf_tables backend). Wall clock of each whole command. Each N checked once "
                 "from the external namespace (first and last port reach the container after "
                 "setup, not after teardown).\n";
    return 0;
}

// Failures throw, so that the lab's destructor ends every process it started.
int main(int argc, char** argv) {
    return lab::guarded_main(run, argc, argv);
}
