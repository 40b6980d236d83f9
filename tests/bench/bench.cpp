// portpub-bench: wall time of `up` and `down` for one container publishing N
// TCP ports, and peak RSS of `up`; then CNI bridge + portmap (Debian's
// containernetworking-plugins) on the same work in the same run. Everything
// happens in a private network and mount namespace of this process.
//
//   portpub-bench [--runs R] [--cni-runs R] [--max-cni-ports N] [--no-cni] [--ipv6]
//                 [--data FILE]
// (--ipv6: the containers get IPv6 too, --subnet6 2001:db8:1::/64; --data:
// the table's figures also as a data file for scripts/charts.gp)
// Prints a Markdown table; see docs/BENCHMARKS.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../integration/lab.hpp"
#include "bench_data.hpp"

using lab::RunResult;

namespace {

using bench::median;

struct Figures {
    double up_ms = 0, down_ms = 0;
    long rss_kb = 0;
};

void require(const RunResult& r, const std::string& what) {
    if (r.status != 0) {
        std::cerr << "bench: " << what << " failed (" << r.status << "): " << r.err << r.out
                  << "\n";
        throw std::runtime_error("stopped");
    }
}

// Holding 10,000 ports takes 20,000 sockets (IPv4 and IPv6), more than the
// usual RLIMIT_NOFILE: from there on, ports are published with --no-reserve.
bool reserves(int ports) {
    return ports < 10000;
}

// Added to every `up`: --subnet6 with --ipv6.
std::vector<std::string> g_up_args;

Figures bench_portpub(lab::Lab& lab, const std::string& netns, int ports, int runs,
                      const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"up", "--netns", netns, "--subnet", lab::kSubnet};
    args.insert(args.end(), g_up_args.begin(), g_up_args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    if (!reserves(ports)) args.push_back("--no-reserve");
    if (ports == 0) args.insert(args.end(), {"-p", "80"});
    if (ports == 65535) {
        args.insert(args.end(), {"-p", "1-65535:1-65535"});
    } else if (ports > 0) {
        for (int i = 0; i < ports; ++i) {
            args.push_back("-p");
            args.push_back(std::to_string(10000 + i) + ":" + std::to_string(10000 + i));
        }
    }
    std::vector<double> up, down;
    long rss = 0;
    for (int run = 0; run < runs; ++run) {
        auto u = lab.portpub(args);
        require(u, "portpub up with " + std::to_string(ports) + " ports");
        up.push_back(u.wall_ms);
        rss = std::max(rss, u.max_rss_kb);
        auto d = lab.portpub({"down", "--netns", netns});
        require(d, "portpub down");
        down.push_back(d.wall_ms);
    }
    return {median(up), median(down), rss};
}

// Runs a CNI plugin the way a runtime does: environment plus config on stdin.
RunResult cni(const std::string& plugin, const std::string& command, const std::string& netns,
              const std::string& config) {
    const std::string conf_file = "/run/cni-bench-conf.json";
    std::ofstream(conf_file) << config;
    return lab::run({"/usr/lib/cni/" + plugin}, [&] {
        ::setenv("CNI_COMMAND", command.c_str(), 1);
        ::setenv("CNI_CONTAINERID", "bench", 1);
        ::setenv("CNI_NETNS", netns.c_str(), 1);
        ::setenv("CNI_IFNAME", "eth0", 1);
        ::setenv("CNI_PATH", "/usr/lib/cni", 1);
        int fd = ::open(conf_file.c_str(), O_RDONLY);
        ::dup2(fd, 0);
    });
}

Figures bench_cni(const std::string& netns, int ports, int runs) {
    const std::string bridge_conf = R"({"cniVersion":"1.0.0","name":"bench","type":"bridge",
      "bridge":"cni0","isGateway":true,"ipMasq":true,"hairpinMode":true,
      "ipam":{"type":"host-local","ranges":[[{"subnet":"198.51.100.0/24"}]],"dataDir":"/run/cni-ipam"}})";
    std::string mappings;
    for (int i = 0; i < ports; ++i)
        mappings += (i ? "," : "") + std::string(R"({"hostPort":)") + std::to_string(10000 + i) +
                    R"(,"containerPort":)" + std::to_string(10000 + i) + R"(,"protocol":"tcp"})";
    std::vector<double> up, down;
    long rss = 0;
    for (int run = 0; run < runs; ++run) {
        auto b = cni("bridge", "ADD", netns, bridge_conf);
        require(b, "CNI bridge ADD");
        const std::string portmap_conf =
            R"({"cniVersion":"1.0.0","name":"bench","type":"portmap","snat":true,)"
            R"("capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[)" +
            mappings + R"(]},"prevResult":)" + b.out + "}";
        auto p = cni("portmap", "ADD", netns, portmap_conf);
        require(p, "CNI portmap ADD with " + std::to_string(ports) + " ports");
        up.push_back(b.wall_ms + p.wall_ms);
        rss = std::max({rss, b.max_rss_kb, p.max_rss_kb});
        auto pd = cni("portmap", "DEL", netns, portmap_conf);
        require(pd, "CNI portmap DEL");
        auto bd = cni("bridge", "DEL", netns, bridge_conf);
        require(bd, "CNI bridge DEL");
        down.push_back(pd.wall_ms + bd.wall_ms);
    }
    return {median(up), median(down), rss};
}

std::string ms(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
    return buf;
}

}  // namespace

int run(int argc, char** argv) {
    int runs = 7, cni_runs = 3, max_cni_ports = 1000;
    bool with_cni = true;
    std::string data;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--runs")
            runs = std::max(1, next());
        else if (a == "--cni-runs")
            cni_runs = std::max(1, next());
        else if (a == "--max-cni-ports")
            max_cni_ports = next();
        else if (a == "--no-cni")
            with_cni = false;
        else if (a == "--ipv6")
            g_up_args = {"--subnet6", "2001:db8:1::/64"};
        else if (a == "--data" && i + 1 < argc)
            data = argv[++i];
        else {
            std::cerr << "usage: portpub-bench [--runs R] [--cni-runs R] [--max-cni-ports N] "
                         "[--no-cni] [--ipv6] [--data FILE]\n";
            return 2;
        }
    }
    if (with_cni && ::access("/usr/lib/cni/portmap", X_OK) != 0) {
        std::cerr
            << "bench: /usr/lib/cni/portmap is missing (scripts/setup.sh --bench installs it); "
               "pass --no-cni to skip the comparison\n";
        return 1;
    }
    lab::Lab lab(0);  // private namespaces; nothing here touches the machine's own
    auto netns = lab.container("bench");

    // The first container on a bridge creates it and the nftables table; the
    // last `down` deletes both (the kernel takes tens of ms to delete a link).
    auto first = bench_portpub(lab, netns, 1, runs);
    std::cout
        << "First container (creates the bridge and the table; its down deletes them), 1 port:"
           " up "
        << ms(first.up_ms) << " ms, down " << ms(first.down_ms) << " ms.\n\n";

    // Steady state from here on: another container keeps the bridge and the
    // table, as CNI's bridge plugin keeps cni0 after DEL.
    auto resident = lab.container("resident");
    std::vector<std::string> resident_up{"up",         "--netns", resident, "--subnet",
                                         lab::kSubnet, "-p",      "1:1/udp"};
    resident_up.insert(resident_up.end(), g_up_args.begin(), g_up_args.end());
    require(lab.portpub(resident_up), "portpub up of the resident container");

    std::cout << "| ports | portpub up (ms) | portpub down (ms) | portpub up peak RSS (KiB) |"
              << (with_cni ? " CNI bridge+portmap ADD (ms) | CNI DEL (ms) | CNI peak RSS (KiB) | "
                             "ADD: CNI / portpub |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
                           : "\n|---:|---:|---:|---:|\n");
    bench::DataFile dat(data,
                        std::string("portpub-bench") + (g_up_args.empty() ? "" : " --ipv6") +
                            ": medians of wall-clock ms; held 0 = --no-reserve; - = not measured",
                        {"ports", "held", "portpub_up_ms", "portpub_down_ms", "portpub_up_rss_kib",
                         "cni_add_ms", "cni_del_ms", "cni_rss_kib"});
    using D = bench::DataFile;
    for (int ports : {1, 10, 100, 1000, 10000, 65535}) {
        auto p = bench_portpub(lab, netns, ports, runs);
        std::cout << "| " << ports << (reserves(ports) ? "" : " *") << " | " << ms(p.up_ms) << " | "
                  << ms(p.down_ms) << " | " << p.rss_kb << " |";
        if (with_cni && ports <= max_cni_ports) {
            auto c = bench_cni(netns, ports, cni_runs);
            std::cout << " " << ms(c.up_ms) << " | " << ms(c.down_ms) << " | " << c.rss_kb << " | "
                      << ms(c.up_ms / p.up_ms) << "x |\n";
            dat.row({D::number(ports), D::number(reserves(ports) ? 1 : 0), D::number(p.up_ms),
                     D::number(p.down_ms), D::number(p.rss_kb), D::number(c.up_ms),
                     D::number(c.down_ms), D::number(c.rss_kb)});
        } else {
            std::cout << (with_cni ? " - | - | - | - |\n" : "\n");
            dat.row({D::number(ports), D::number(reserves(ports) ? 1 : 0), D::number(p.up_ms),
                     D::number(p.down_ms), D::number(p.rss_kb), D::missing(), D::missing(),
                     D::missing()});
        }
        std::cout.flush();
    }
    // What loopback rewriting costs the largest publication: the same
    // without it, in the same run.
    const auto proxy_only = bench_portpub(lab, netns, 65535, runs, {"--loopback", "proxy"});
    std::cout << "\n65,535 ports with --loopback proxy (no loopback rewriting), for comparison: up "
              << ms(proxy_only.up_ms) << " ms, down " << ms(proxy_only.down_ms) << " ms.\n";
    std::cout << "\nportpub: median of " << runs << " runs ("
              << "10,000 ports as 10,000 -p options, 65,535 as one range"
              << ")" << (with_cni ? "; CNI: median of " + std::to_string(cni_runs) + " runs" : "")
              << ". Wall clock of each whole command, exec and veth set-up included. "
                 "Defaults (proxy on, ports held), except * : --no-reserve.\n";
    return 0;
}

// Failures throw, so that the lab's destructor ends every process it started.
int main(int argc, char** argv) {
    return lab::guarded_main(run, argc, argv);
}
