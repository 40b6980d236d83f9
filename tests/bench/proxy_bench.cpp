// portpub-proxy-bench: loopback served by the kernel's rewriting, by the
// portpub proxy and by docker-proxy, against no proxy at all, in one run, in
// private namespaces of this process:
//   - bulk TCP throughput (iperf3) to a container server on 127.0.0.1 with
//     the socket programs rewriting the connection (--loopback kernel),
//     through the portpub proxy (--loopback proxy) and through docker-proxy,
//     direct to the container, and from the lab's external namespace
//     (another host) to the host's address and the published port: the
//     kernel path (portpub's DNAT, no proxy);
//   - short connections per second through each (a client of its own against
//     a server that answers "hello" and closes);
//   - what the connect4 program costs a connect (BPF_ENABLE_STATS: the
//     kernel's run time and count of the program), rewritten or not;
//   - resident memory of one portpub proxy serving 1,000 ports, against the
//     sum over 1,000 docker-proxy processes.
//
//   portpub-proxy-bench --docker-proxy PATH [--seconds S] [--runs R] [--ports N]
//                       [--data FILE] [--memory-data FILE]
// (--data: the per-path figures as a data file for scripts/charts.gp;
// --memory-data: the memory figures)
// Prints Markdown; see docs/BENCHMARKS.md.
#include <netinet/in.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
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

namespace {

using Clock = std::chrono::steady_clock;

using bench::median;

[[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error(why);
}

// CPU time a process has used, in seconds (user + system).
double cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i)
        if (i >= 14) ticks += std::stod(field);  // utime, stime
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Proportional set size: resident memory with each shared page split among
// the processes that map it, so that 1,000 copies of one binary count once.
long pss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Pss:", 0) == 0) return std::stol(line.substr(4));
    return 0;
}

// A docker-proxy process; it reports on fd 3 ("0\n") once it listens.
int start_docker_proxy(const std::string& path, int host_port, const std::string& container_ip,
                       int container_port) {
    int status[2];
    if (::pipe(status) != 0) fail("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(status[1], 3);
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execl(path.c_str(), path.c_str(), "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port",
                std::to_string(host_port).c_str(), "-container-ip", container_ip.c_str(),
                "-container-port", std::to_string(container_port).c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(status[1]);
    char c = 0;
    pollfd p{status[0], POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1 || ::read(status[0], &c, 1) != 1 || c != '0')
        fail("docker-proxy did not start on port " + std::to_string(host_port));
    ::close(status[0]);
    return pid;
}

// netns_fd: the namespace the client runs in (-1: this process's, the lab's host).
double iperf3_gbits(const std::string& host, int port, int seconds, int netns_fd) {
    auto r = lab::run(
        {"iperf3", "-c", host, "-p", std::to_string(port), "-t", std::to_string(seconds), "-J"},
        [netns_fd] {
            if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(126);
        });
    if (r.status != 0)
        fail("iperf3 to " + host + ":" + std::to_string(port) + " failed: " + r.out + r.err);
    auto j = nlohmann::json::parse(r.out);
    return j["end"]["sum_received"]["bits_per_second"].get<double>() / 1e9;
}

// Short connections per second: `parallel` at a time, each connect, read
// the server's line to its end of file, close.
double connections_per_second(const std::string& host, int port, int seconds, int parallel = 32) {
    int ep = ::epoll_create1(0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
    std::set<int> open;  // closed at the end: every call starts from none
    auto open_one = [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket: " + std::string(std::strerror(errno)));
        open.insert(fd);
        ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    };
    for (int i = 0; i < parallel; ++i)
        open_one();
    long done = 0, failed = 0;
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    epoll_event events[64];
    char buf[256];
    while (Clock::now() < end) {
        int n = ::epoll_wait(ep, events, 64, 100);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            ssize_t got;
            while ((got = ::read(fd, buf, sizeof buf)) > 0) {
            }
            if (got == 0 || (got < 0 && errno != EAGAIN)) {
                (got == 0 ? done : failed)++;
                ::close(fd);  // epoll forgets it
                open.erase(fd);
                open_one();
            }
        }
    }
    ::close(ep);
    for (int fd : open)
        ::close(fd);
    if (done == 0) fail("no short connection was served on port " + std::to_string(port));
    if (failed > done / 100)
        fail(std::to_string(failed) + " of the short connections failed on port " +
             std::to_string(port));
    return static_cast<double>(done) / seconds;
}

// The same from namespace netns_fd (-1: this one): a thread of its own joins
// it, so that every socket of the client is made there.
double connections_per_second_from(int netns_fd, const std::string& host, int port, int seconds) {
    if (netns_fd < 0) return connections_per_second(host, port, seconds);
    double rate = 0;
    std::string error;
    std::thread client([&] {
        try {
            if (::setns(netns_fd, CLONE_NEWNET) != 0) fail("setns");
            rate = connections_per_second(host, port, seconds);
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    client.join();
    if (!error.empty()) fail(error);
    return rate;
}

// The kernel's count of runs of the pinned connect4 program and their time,
// while BPF_ENABLE_STATS is on.
struct ProgramStats {
    std::uint64_t runs = 0, ns = 0;
};
ProgramStats connect4_stats() {
    int link = bpf_obj_get("/sys/fs/bpf/portpub/connect4");
    if (link < 0) fail("opening the pinned connect4 link: " + std::string(std::strerror(errno)));
    bpf_link_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(link, &info, &len) != 0) fail("reading the connect4 link");
    ::close(link);
    int prog = bpf_prog_get_fd_by_id(info.prog_id);
    if (prog < 0) fail("opening the connect4 program");
    bpf_prog_info pinfo{};
    len = sizeof pinfo;
    if (bpf_obj_get_info_by_fd(prog, &pinfo, &len) != 0) fail("reading the connect4 program");
    ::close(prog);
    return {pinfo.run_cnt, pinfo.run_time_ns};
}

std::string fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

}  // namespace

int run(int argc, char** argv) {
    std::string docker_proxy, data, memory_data;
    int seconds = 5, runs = 3, ports = 1000, pairs = 20;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (a == "--docker-proxy")
            docker_proxy = next();
        else if (a == "--seconds")
            seconds = std::max(1, std::stoi(next()));
        else if (a == "--runs")
            runs = std::max(1, std::stoi(next()));
        else if (a == "--ports")
            ports = std::max(1, std::stoi(next()));
        else if (a == "--pairs")
            pairs = std::max(1, std::stoi(next()));
        else if (a == "--data")
            data = next();
        else if (a == "--memory-data")
            memory_data = next();
        else
            fail(
                "usage: portpub-proxy-bench --docker-proxy PATH [--seconds S] [--runs R] [--ports "
                "N] [--pairs P] [--data FILE] [--memory-data FILE]");
    }
    if (docker_proxy.empty() || ::access(docker_proxy.c_str(), X_OK) != 0)
        fail("pass --docker-proxy PATH (scripts/bench.sh fetches it from Debian's docker.io)");
    ::signal(SIGPIPE, SIG_IGN);

    lab::Lab lab(0);  // private namespaces; nothing here touches the machine's own
    // The same servers twice: srv's loopback rewritten by the kernel, srv2's
    // served by the proxy.
    auto srv = lab.container("srv");
    auto srv2 = lab.container("srv2");
    for (const char* name : {"srv", "srv2"}) {
        lab.spawn(name, {"iperf3", "-s", "-p", "5201"});
        lab.spawn(name, {ECHO_BIN, name, "--hello-tcp", "9000"});
    }
    auto up = lab.portpub(
        {"up", "--netns", srv, "--subnet", lab::kSubnet, "-p", "15201:5201", "-p", "19000:9000"});
    if (up.status != 0) fail("portpub up: " + up.err);
    auto up2 = lab.portpub({"up", "--netns", srv2, "--subnet", lab::kSubnet, "--loopback", "proxy",
                            "-p", "16201:5201", "-p", "18000:9000"});
    if (up2.status != 0) fail("portpub up --loopback proxy: " + up2.err);
    const std::string container = "198.51.100.2";
    // The kernel counts the programs' runs and time while this is open.
    const int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats < 0) fail("BPF_ENABLE_STATS: " + std::string(std::strerror(errno)));
    std::vector<int> dockers{start_docker_proxy(docker_proxy, 25201, container, 5201),
                             start_docker_proxy(docker_proxy, 29000, container, 9000)};
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // iperf3 server up

    struct Path {
        const char* name;
        const char* label;  // in the chart
        int netns_fd;       // where the clients run (-1: the lab's host)
        std::string host;
        int iperf_port, hello_port;
        std::vector<int> proxies;  // whose CPU time counts (none without a proxy)
        std::vector<double> gbits = {}, rate = {}, cpu_per_gb = {}, cpu_per_kconn = {},
                            connect_ns = {};
    };
    const int our_proxy = *lab.proxy_pid("srv2");
    const int ext = lab.ns_fd("ext");
    std::vector<Path> paths{
        {"direct to the container", "direct", -1, container, 5201, 9000, {}},
        {"kernel path (DNAT), external namespace to 192.0.2.1",
         "kernel path",
         ext,
         lab::kHostIp,
         15201,
         19000,
         {}},
        {"kernel rewriting, 127.0.0.1", "kernel rewriting", -1, "127.0.0.1", 15201, 19000, {}},
        {"portpub proxy, 127.0.0.1", "portpub proxy", -1, "127.0.0.1", 16201, 18000, {our_proxy}},
        {"docker-proxy, 127.0.0.1",
         "docker-proxy",
         -1,
         "127.0.0.1",
         25201,
         29000,
         {dockers[0], dockers[1]}}};
    auto cpu = [](const std::vector<int>& pids) {
        double s = 0;
        for (int pid : pids)
            s += cpu_seconds(pid);
        return s;
    };
    // Interleaved, so that drift hits all alike, and in reverse order every
    // other run, so that no path always follows the same one.
    for (int run = 0; run < runs; ++run)
        for (std::size_t k = 0; k < paths.size(); ++k) {
            auto& p = paths[run % 2 == 0 ? k : paths.size() - 1 - k];
            double before = cpu(p.proxies);
            const double gbits = iperf3_gbits(p.host, p.iperf_port, seconds, p.netns_fd);
            p.gbits.push_back(gbits);
            p.cpu_per_gb.push_back((cpu(p.proxies) - before) / (gbits * seconds / 8));
            before = cpu(p.proxies);
            const auto program_before = connect4_stats();
            const double rate =
                connections_per_second_from(p.netns_fd, p.host, p.hello_port, seconds);
            const auto program_after = connect4_stats();
            if (program_after.runs > program_before.runs)
                p.connect_ns.push_back(
                    static_cast<double>(program_after.ns - program_before.ns) /
                    static_cast<double>(program_after.runs - program_before.runs));
            p.rate.push_back(rate);
            p.cpu_per_kconn.push_back((cpu(p.proxies) - before) / (rate * seconds / 1000));
        }

    // Kernel rewriting against direct once more, in pairs of 1 s slices taken
    // one right after the other (in turn first): the two differ by less than
    // this machine drifts between runs of 5 s minutes apart, so each pair is
    // a ratio of its own, and the median of those the figure.
    std::vector<double> pair_gbits, pair_rate;
    // Pair i: rewriting over direct, the one measured first taking turns.
    auto in_turn = [&](int i, auto measure) {
        double v[2];
        for (int k = 0; k < 2; ++k) {
            const int which = (i + k) % 2;  // 0: direct, 1: rewriting
            v[which] = measure(paths[which == 0 ? 0 : 2]);
        }
        return v[1] / v[0];
    };
    for (int i = 0; i < pairs; ++i) {
        pair_gbits.push_back(
            in_turn(i, [](const auto& p) { return iperf3_gbits(p.host, p.iperf_port, 1, -1); }));
        pair_rate.push_back(in_turn(
            i, [](const auto& p) { return connections_per_second(p.host, p.hello_port, 1); }));
    }

    // Memory for N published ports: one portpub proxy against N docker-proxy processes.
    auto many = lab.container("many");
    // Below the local port range, and apart: the portpub proxy holds its ports.
    const int first = 20000, docker_first = 20000 + ports;
    const std::string spec = std::to_string(first) + "-" + std::to_string(first + ports - 1) + ":" +
                             std::to_string(first) + "-" + std::to_string(first + ports - 1);
    auto big = lab.portpub({"up", "--netns", many, "--subnet", lab::kSubnet, "--json", "-p", spec});
    if (big.status != 0) fail("portpub up with " + std::to_string(ports) + " ports: " + big.err);
    const auto many_ip = nlohmann::json::parse(big.out).at("address").get<std::string>();
    const int proxy = *lab.proxy_pid("many");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const long portpub_kib = pss_kib(proxy);
    const int portpub_fds = lab::fd_count(proxy);
    std::vector<int> many_dockers;
    long docker_kib = 0;
    for (int i = 0; i < ports; ++i)
        many_dockers.push_back(
            start_docker_proxy(docker_proxy, docker_first + i, many_ip, first + i));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int pid : many_dockers)
        docker_kib += pss_kib(pid);
    for (int pid : many_dockers)
        ::kill(pid, SIGKILL);
    for (int pid : dockers)
        ::kill(pid, SIGKILL);
    for (int pid : many_dockers)
        ::waitpid(pid, nullptr, 0);
    for (int pid : dockers)
        ::waitpid(pid, nullptr, 0);

    ::close(stats);
    // A ratio is the median of each run's own ratio: the two figures of a
    // run were measured minutes apart at most, under the same conditions.
    auto each_ratio = [runs](const std::vector<double>& a, const std::vector<double>& b) {
        std::vector<double> each;
        for (int r = 0; r < runs; ++r)
            each.push_back(a[static_cast<std::size_t>(r)] / b[static_cast<std::size_t>(r)]);
        return each;
    };
    auto ratio = [&](const std::vector<double>& a, const std::vector<double>& b) {
        return median(each_ratio(a, b));
    };
    const auto &direct = paths[0], &kernel = paths[1], &rewritten = paths[2], &ours = paths[3],
               &docker = paths[4];
    std::cout << "| path | TCP throughput (Gbit/s) | proxy CPU per GB (ms) | short connections per "
                 "second | proxy CPU per 1,000 connections (ms) | connect4 program per connect "
                 "(ns) |\n|---|---:|---:|---:|---:|---:|\n";
    for (const auto& p : paths)
        std::cout << "| " << p.name << " | " << fixed(median(p.gbits), 2) << " | "
                  << (p.proxies.empty() ? "-" : fixed(1000 * median(p.cpu_per_gb), 1)) << " | "
                  << fixed(median(p.rate), 0) << " | "
                  << (p.proxies.empty() ? "-" : fixed(1000 * median(p.cpu_per_kconn), 1)) << " | "
                  << (p.connect_ns.empty() ? "-" : fixed(median(p.connect_ns), 0)) << " |\n";
    std::cout << "\n";
    using D = bench::DataFile;
    D dat(data,
          "portpub-proxy-bench: medians of " + std::to_string(runs) + " runs of " +
              std::to_string(seconds) + " s; - = no proxy process",
          {"path", "label", "gbit_per_s", "connections_per_s", "proxy_cpu_ms_per_gb",
           "proxy_cpu_ms_per_1000_connections", "connect4_ns_per_connect"});
    for (const auto& p : paths)
        dat.row({D::quoted(p.name), D::quoted(p.label), D::number(median(p.gbits)),
                 D::number(median(p.rate), 0),
                 p.proxies.empty() ? D::missing() : D::number(1000 * median(p.cpu_per_gb), 1),
                 p.proxies.empty() ? D::missing() : D::number(1000 * median(p.cpu_per_kconn), 1),
                 p.connect_ns.empty() ? D::missing() : D::number(median(p.connect_ns), 0)});
    D mem(memory_data, "portpub-proxy-bench: memory (PSS) for N published ports",
          {"ports", "portpub_proxy_pss_kib", "portpub_proxy_fds", "docker_proxy_pss_kib_total"});
    mem.row(
        {D::number(ports), D::number(portpub_kib), D::number(portpub_fds), D::number(docker_kib)});
    std::cout << "| ratio | measured | target |\n|---|---:|---:|\n";
    std::cout << "| kernel path / direct throughput | "
              << fixed(ratio(kernel.gbits, direct.gbits), 2) << " | - |\n";
    std::cout << "| kernel rewriting / direct throughput | "
              << fixed(ratio(rewritten.gbits, direct.gbits), 2) << " | >= 0.97 |\n";
    std::cout << "| kernel rewriting / direct connection rate | "
              << fixed(ratio(rewritten.rate, direct.rate), 2) << " | >= 0.97 |\n";
    std::cout << "| kernel rewriting / direct throughput, " << pairs << " pairs of 1 s slices | "
              << fixed(median(pair_gbits), 2) << " | >= 0.97 |\n";
    std::cout << "| kernel rewriting / direct connection rate, " << pairs
              << " pairs of 1 s slices | " << fixed(median(pair_rate), 2) << " | >= 0.97 |\n";
    std::cout << "| kernel rewriting / docker-proxy throughput | "
              << fixed(ratio(rewritten.gbits, docker.gbits), 2) << " | >= 1.4 |\n";
    std::cout << "| kernel rewriting / docker-proxy connection rate | "
              << fixed(ratio(rewritten.rate, docker.rate), 2) << " | >= 2 |\n";
    std::cout << "| portpub / docker-proxy throughput | "
              << fixed(ratio(ours.gbits, docker.gbits), 2) << " | >= 1.2 |\n";
    std::cout << "| portpub / direct throughput | " << fixed(ratio(ours.gbits, direct.gbits), 2)
              << " | >= 0.9 |\n";
    std::cout << "| portpub / docker-proxy connection rate | "
              << fixed(ratio(ours.rate, docker.rate), 2) << " | >= 2 |\n";
    std::cout << "| portpub / docker-proxy memory, " << ports << " ports | "
              << fixed(static_cast<double>(portpub_kib) / static_cast<double>(docker_kib), 4)
              << " | < 0.02 |\n\n";
    std::cout << "Memory for " << ports << " published ports: one portpub proxy " << portpub_kib
              << " KiB PSS (" << portpub_fds
              << " file descriptors, the ports held on 0.0.0.0 and [::]); " << ports
              << " docker-proxy processes " << docker_kib << " KiB PSS in all ("
              << docker_kib / ports << " KiB each, IPv4 only).\n";
    std::cout << "Medians of " << runs << " runs of " << seconds << " s each; iperf3 "
              << "single stream"
              << "; connection client: 32 at a time. A ratio is the median of the runs' own "
                 "ratios.\n";
    std::cout << "Kernel rewriting / direct, run by run: throughput";
    for (double r : each_ratio(rewritten.gbits, direct.gbits))
        std::cout << " " << fixed(r, 2);
    std::cout << "; connection rate";
    for (double r : each_ratio(rewritten.rate, direct.rate))
        std::cout << " " << fixed(r, 2);
    std::cout << ".\n";
    auto quartiles = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        const std::size_t n = v.size();
        return fixed(v[(n - 1) / 4], 3) + " to " + fixed(v[3 * (n - 1) / 4], 3);
    };
    std::cout << "Pairs of 1 s slices, rewriting / direct: throughput median "
              << fixed(median(pair_gbits), 3) << " (quartiles " << quartiles(pair_gbits)
              << "), connection rate median " << fixed(median(pair_rate), 3) << " (quartiles "
              << quartiles(pair_rate) << ").\n";
    return 0;
}

// Failures throw, so that the lab's destructor ends every process it started.
int main(int argc, char** argv) {
    return lab::guarded_main(run, argc, argv);
}
