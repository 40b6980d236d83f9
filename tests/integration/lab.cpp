// The integration tests' lab: the test process in private namespaces with its own /run, a fresh
// host namespace a Lab, containers and other machines as namespaces with echo servers, clients
// run inside them, and a snapshot of the host's configuration to compare before and after.
#include "lab.hpp"

#include <netinet/in.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace lab {

namespace {

// "/proc/sys/net/ipv4/conf/NAME/route_localnet:VALUE" for all, default and
// every interface of the current network namespace.
constexpr const char* kRouteLocalnetLines = "grep -H . /proc/sys/net/ipv4/conf/*/route_localnet";

[[noreturn]] void die(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

// Once per test process: a private mount namespace with its own /run, and a
// network namespace of its own, so that nothing the tests do is seen outside.
namespace {

// The cgroup v2 mount point, as portpub finds it (/proc/self/mountinfo).
std::string cgroup2_mount() {
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);) {
        const auto dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, dev, root, mountpoint;
        fields >> id >> parent >> dev >> root >> mountpoint;
        return mountpoint;
    }
    die("finding the cgroup v2 hierarchy");
}

// The cgroup this process was in (the CI job's, say), hidden by the bind mount.
int cgroup_root_fd = -1;

// The cgroups below `dir` (relative to `root_fd`), deepest first; not `dir`.
void remove_cgroup_tree(int root_fd, const std::string& dir) {
    int fd = ::openat(root_fd, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    std::vector<std::string> subdirs;
    if (DIR* d = ::fdopendir(fd)) {
        while (const dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
                std::strcmp(e->d_name, "..") != 0)
                subdirs.push_back(e->d_name);
        ::closedir(d);
    } else {
        ::close(fd);
    }
    for (const auto& sub : subdirs) {
        remove_cgroup_tree(root_fd, dir + "/" + sub);
        ::unlinkat(root_fd, (dir + "/" + sub).c_str(), AT_REMOVEDIR);
    }
}
std::string own_cgroup;  // its child this process made

void leave_own_cgroup() {
    const std::string pid = std::to_string(::getpid());
    int fd = ::openat(cgroup_root_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        [[maybe_unused]] auto n = ::write(fd, pid.data(), pid.size());
        ::close(fd);
    }
    // Processes of the labs may still be exiting: a bounded wait for them.
    // Podman leaves a cgroup of its own below (libpod_parent): the deepest go first.
    for (int i = 0; i < 100; ++i) {
        remove_cgroup_tree(cgroup_root_fd, own_cgroup);
        if (::unlinkat(cgroup_root_fd, own_cgroup.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT)
            return;
        ::usleep(20000);
    }
    std::fprintf(stderr, "lab: could not remove cgroup %s: %s\n", own_cgroup.c_str(),
                 std::strerror(errno));
}

// The socket programs of portpub attach at the cgroup v2 root that
// /proc/self/mountinfo shows. This process moves into a child cgroup of its
// own and mounts it over the hierarchy's mount point in its own mount
// namespace: whatever portpub a test runs (by hand, through a runtime, as a
// CNI plugin) attaches there, and the clients of the test (this process and
// its children) are in it. The child goes at exit; one a killed run left is
// removed by the next once empty.
void enter_own_cgroup() {
    const std::string mount = cgroup2_mount();
    // Below the cgroup this process is in, so that it stays under its
    // limits and its job's control ("0::PATH" in /proc/self/cgroup).
    std::string path;
    {
        std::ifstream in("/proc/self/cgroup");
        for (std::string line; std::getline(in, line);)
            if (line.rfind("0::", 0) == 0) path = line.substr(3);
    }
    const std::string parent = path.empty() || path == "/" ? mount : mount + path;
    cgroup_root_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_root_fd < 0) die("opening " + parent);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
        // Those of test processes that are gone (rmdir takes empty ones only).
        const auto name = entry.path().filename().string();
        if (name.rfind("portpub-test-", 0) != 0) continue;
        const int pid = std::atoi(name.c_str() + std::strlen("portpub-test-"));
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
            remove_cgroup_tree(cgroup_root_fd, name);
            ::rmdir(entry.path().c_str());
        }
    }
    own_cgroup = "portpub-test-" + std::to_string(::getpid());
    const std::string dir = parent + "/" + own_cgroup;
    if (::mkdir(dir.c_str(), 0755) != 0) die("mkdir " + dir);
    std::atexit(leave_own_cgroup);
    {
        std::ofstream procs(dir + "/cgroup.procs");
        procs << ::getpid() << std::flush;
        if (!procs) die("moving into " + dir);
    }
    if (::mount(dir.c_str(), mount.c_str(), nullptr, MS_BIND, nullptr) != 0)
        die("mounting " + dir + " over " + mount);
}

}  // namespace

std::string cgroup_root() {
    return cgroup2_mount();
}

void isolate_process() {
    static bool done = false;
    if (done) return;
    if (::geteuid() != 0)
        throw std::runtime_error("integration tests need root (they build network namespaces)");
    if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNS | CLONE_NEWNET)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die("making / private");
    if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) die("mounting a tmpfs on /run");
    // What the runtimes and CNI plugins keep in /var/lib (host-local's leases,
    // libcni's cache) goes to an overlay whose writes stay on that tmpfs.
    for (const char* dir :
         {"/run/.lab-var-lib", "/run/.lab-var-lib/upper", "/run/.lab-var-lib/work"})
        if (::mkdir(dir, 0700) != 0) die("mkdir");
    if (::mount(
            "overlay", "/var/lib", "overlay", 0,
            "lowerdir=/var/lib,upperdir=/run/.lab-var-lib/upper,workdir=/run/.lab-var-lib/work") !=
        0)
        die("mounting an overlay on /var/lib");
    // Proxies started by portpub outlive the `up` that started them: as a
    // subreaper, this process inherits them, and ends them with its labs.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    enter_own_cgroup();
    done = true;
}

namespace {

class InNetns {
  public:
    explicit InNetns(int fd) : saved_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
        if (saved_ < 0 || ::setns(fd, CLONE_NEWNET) != 0) die("setns");
    }
    ~InNetns() {
        if (::setns(saved_, CLONE_NEWNET) != 0) std::abort();
        ::close(saved_);
    }

  private:
    int saved_;
};

struct Endpoint {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    sockaddr* addr() { return reinterpret_cast<sockaddr*>(&ss); }
};

Endpoint endpoint(const std::string& ip, int port) {
    Endpoint e;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&e.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.ss);
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        e.len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        e.len = sizeof *v6;
    } else {
        throw std::runtime_error("bad address " + ip);
    }
    return e;
}

// Every child of this process (proxies it inherited as a subreaper included).
std::vector<int> children() {
    std::vector<int> out;
    const std::string self = std::to_string(::getpid());
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (!std::isdigit(static_cast<unsigned char>(name[0]))) continue;
        std::ifstream in(entry.path() / "stat");
        std::string line;
        if (!std::getline(in, line)) continue;
        auto close = line.rfind(')');
        std::istringstream rest(line.substr(close + 2));
        std::string state, ppid;
        rest >> state >> ppid;
        if (ppid == self) out.push_back(std::stoi(name));
    }
    return out;
}

bool wait_for(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & (events | POLLHUP | POLLERR));
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const std::function<void()>& in_child) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) die("pipe");
    timespec start{}, end{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        if (in_child) in_child();
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    RunResult r;
    // Both pipes at once, so that a child filling one never blocks on it.
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    for (int open = 2; open > 0;) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buf[65536];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    ::clock_gettime(CLOCK_MONOTONIC, &end);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.wall_ms = static_cast<double>(end.tv_sec - start.tv_sec) * 1e3 +
                static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e6;
    r.max_rss_kb = usage.ru_maxrss;
    return r;
}

std::string sh(const std::string& command) {
    auto r = run({"/bin/sh", "-c", command});
    if (r.status != 0) throw std::runtime_error("'" + command + "' failed: " + r.err);
    return r.out;
}

std::string diff_lines(const std::string& a, const std::string& b) {
    auto lines = [](const std::string& text) {
        std::multiset<std::string> out;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
            out.insert(line);
        return out;
    };
    auto la = lines(a), lb = lines(b);
    std::string out;
    for (const auto& l : la)
        if (la.count(l) > lb.count(l)) out += "- " + l + "\n";
    for (const auto& l : lb)
        if (lb.count(l) > la.count(l)) out += "+ " + l + "\n";
    return out;
}

int guarded_main(int (*body)(int, char**), int argc, char** argv) {
    try {
        return body(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: %s\n", e.what());
        return 1;
    }
}

std::vector<std::string> words(const std::string& reply) {
    std::istringstream in(reply);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

bool Lab::has_bridge_netfilter() {
    return ::access("/proc/sys/net/bridge/bridge-nf-call-iptables", F_OK) == 0;
}

Lab::Lab(int bridge_nf) {
    isolate_process();
    // A fresh "host" for every lab; the previous one goes when nothing holds it.
    if (::unshare(CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNET)");
    ::mkdir("/run/netns", 0755);
    if (::mount("tmpfs", "/run/netns", "tmpfs", 0, "mode=0755") != 0) die("mounting /run/netns");
    // portpub's pins go to a bpffs of this lab, in this mount namespace,
    // never the machine's; unmounted, it detaches what is pinned there.
    if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) die("mounting bpffs");
    char tmpl[] = "/run/portpub-lab-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp");
    state_dir_ = std::string(tmpl) + "/state";
    ns_fds_["host"] = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

    sh("ip link set lo up");
    // A new namespace inherits all/default from the machine's first one; the
    // lab starts where portpub must leave it, whatever the machine has.
    sh("echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet && "
       "echo 0 > /proc/sys/net/ipv4/conf/default/route_localnet && "
       "echo 0 > /proc/sys/net/ipv4/conf/lo/route_localnet");
    if (has_bridge_netfilter())
        sh("echo " + std::to_string(bridge_nf) +
           " | tee /proc/sys/net/bridge/bridge-nf-call-iptables "
           "/proc/sys/net/bridge/bridge-nf-call-ip6tables >/dev/null");
    sh("ip netns add ext && ip link add ext0 type veth peer name eth0 netns ext && "
       "ip addr add 192.0.2.1/24 dev ext0 && ip addr add 192.0.2.3/24 dev ext0 && "
       "ip link set ext0 up && ip -n ext link set lo up && "
       "ip -n ext addr add 192.0.2.2/24 dev eth0 && ip -n ext link set eth0 up && "
       "ip -n ext route add default via 192.0.2.1 && "
       "ip addr add 2001:db8::1/64 dev ext0 nodad && ip -n ext addr add 2001:db8::2/64 dev eth0 "
       "nodad && "
       "ip -n ext route add default via 2001:db8::1");
    ns_fds_["ext"] = ::open("/run/netns/ext", O_RDONLY | O_CLOEXEC);
    // The kernel adds the local route of 2001:db8::1 once ext0 has carrier,
    // which the link watcher reports in its own time (up to a second): a
    // snapshot taken before it would differ from every one after.
    wait_until("the local route of 2001:db8::1", 3000,
               [] { return !sh("ip -6 route show table local 2001:db8::1 dev ext0").empty(); });
}

Lab::~Lab() {
    for (auto& [name, pids] : servers_)
        for (int pid : pids) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    for (int pid : children()) {  // proxies and echo children left by the test
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    for (auto& [name, fd] : ns_fds_)
        ::close(fd);
    ::umount2("/run/netns", MNT_DETACH);
    ::umount2("/sys/fs/bpf", MNT_DETACH);
}

void Lab::remote(const std::string& name) {
    sh("ip netns add " + name + " && ip link add rem0 type veth peer name eth0 netns " + name +
       " && ip addr add 198.51.100.1/24 dev rem0 && ip addr add 2001:db8:1::1/64 dev rem0 nodad && "
       "ip link set rem0 up && ip -n " +
       name + " link set lo up && ip -n " + name + " addr add 198.51.100.2/24 dev eth0 && ip -n " +
       name + " addr add 2001:db8:1::2/64 dev eth0 nodad && ip -n " + name + " link set eth0 up");
    ns_fds_[name] = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
}

std::string Lab::container(const std::string& name) {
    sh("ip netns add " + name);
    const std::string path = "/run/netns/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open " + path);
    ns_fds_[name] = fd;
    serve(name);
    return path;
}

void Lab::serve(const std::string& name) {
    const int fd = ns_fd(name);
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) die("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(ready[1], 1);
        if (::setns(fd, CLONE_NEWNET) != 0) ::_exit(126);
        ::execl(ECHO_BIN, ECHO_BIN, name.c_str(), "--tcp", "80", "--tcp", "81", "--udp", "53",
                "--udp", "54", "--echo-tcp", "7", "--echo-udp", "7", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(ready[1]);
    // Wait for "ready": every socket of the server is bound.
    std::string line;
    char c;
    while (line.size() < 16 && wait_for(ready[0], POLLIN, 5000) && ::read(ready[0], &c, 1) == 1 &&
           c != '\n')
        line += c;
    ::close(ready[0]);
    if (line != "ready")
        throw std::runtime_error("pp-echo did not start in namespace " + name +
                                 " (no \"ready\" within 5 s)");
    servers_[name].push_back(pid);
}

int Lab::spawn(const std::string& name, const std::vector<std::string>& argv) {
    const int fd = ns_fd(name);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::setns(fd, CLONE_NEWNET) != 0) ::_exit(126);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    if (pid < 0) die("fork");
    servers_[name].push_back(pid);
    return pid;
}

void Lab::kill_servers(const std::string& name) {
    for (int pid : servers_[name]) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    servers_.erase(name);
}

void Lab::remove_container(const std::string& name) {
    kill_servers(name);
    if (auto it = ns_fds_.find(name); it != ns_fds_.end()) {
        ::close(it->second);
        ns_fds_.erase(it);
    }
    sh("ip netns del " + name);
}

int Lab::ns_fd(const std::string& name) {
    auto it = ns_fds_.find(name);
    if (it == ns_fds_.end()) throw std::runtime_error("no namespace " + name + " in this lab");
    return it->second;
}

RunResult Lab::portpub(std::vector<std::string> args, const std::function<void()>& in_child) const {
    if (!watch && !args.empty() && (args[0] == "up" || args[0] == "forward"))
        args.push_back("--no-watch");
    if (loopback != "kernel" && !args.empty() && args[0] == "up") {
        args.push_back("--loopback");
        args.push_back(loopback);
    }
    args.insert(args.begin(), PORTPUB_BIN);
    args.push_back("--state-dir");
    args.push_back(state_dir_);
    return run(args, in_child);
}

RunResult Lab::cni(const std::map<std::string, std::string>& vars, const std::string& config,
                   const std::string& program) const {
    const std::string path = state_dir_ + ".cni-config.json";
    std::ofstream(path) << config;
    return run({program}, [&vars, path] {
        for (const char* v :
             {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"})
            ::unsetenv(v);
        for (const auto& [k, v] : vars)
            ::setenv(k.c_str(), v.c_str(), 1);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ::dup2(fd, 0);
    });
}

RunResult Lab::up(const std::string& netns, const std::vector<std::string>& specs,
                  std::vector<std::string> extra) const {
    std::vector<std::string> args{"up", "--netns", netns};
    if (std::find(extra.begin(), extra.end(), "--subnet") == extra.end()) {
        args.push_back("--subnet");
        args.push_back(kSubnet);
    }
    for (const auto& s : specs) {
        args.push_back("-p");
        args.push_back(s);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = portpub(args);
    if (r.status != 0) throw std::runtime_error("portpub up failed: " + r.err);
    return r;
}

std::string Lab::answering(const std::string& from, const std::string& ip, int port,
                           int timeout_ms) {
    auto reply = tcp(from, ip, port, timeout_ms);
    return reply ? words(*reply).at(0) : "";
}

std::optional<std::string> Lab::tcp(const std::string& from, const std::string& ip, int port,
                                    int timeout_ms) {
    int fd;
    {
        InNetns in(ns_fd(from));
        fd = ::socket(endpoint(ip, port).family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    auto sa = endpoint(ip, port);
    std::optional<std::string> reply;
    int rc = ::connect(fd, sa.addr(), sa.len);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if ((rc == 0 || errno == EINPROGRESS) && wait_for(fd, POLLOUT, timeout_ms) &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
        const std::string msg = "hello\n";
        if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size())) {
            std::string got;
            char buf[512];
            while (wait_for(fd, POLLIN, timeout_ms)) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                got.append(buf, static_cast<size_t>(n));
            }
            if (!got.empty()) reply = got.substr(0, got.find('\n'));
        }
    }
    ::close(fd);
    return reply;
}

std::optional<std::string> Lab::udp(const std::string& from, const std::string& ip, int port,
                                    int timeout_ms) {
    int fd;
    {
        InNetns in(ns_fd(from));
        fd = ::socket(endpoint(ip, port).family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    auto sa = endpoint(ip, port);
    std::optional<std::string> reply;
    // Connected, so that an ICMP port unreachable ends the wait early.
    if (::connect(fd, sa.addr(), sa.len) == 0 && ::send(fd, "hello", 5, 0) == 5 &&
        wait_for(fd, POLLIN, timeout_ms)) {
        char buf[512];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) reply = std::string(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return reply;
}

void Lab::udp_send(const std::string& from, const std::string& ip, int port) {
    auto sa = endpoint(ip, port);
    int fd;
    {
        InNetns in(ns_fd(from));
        fd = ::socket(sa.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    const bool sent = ::sendto(fd, "hello", 5, 0, sa.addr(), sa.len) == 5;
    ::close(fd);
    if (!sent) die("sendto " + ip + ":" + std::to_string(port));
}

std::optional<std::string> Lab::echo_tcp(const std::string& from, const std::string& ip, int port,
                                         const std::string& payload, int timeout_ms) {
    auto sa = endpoint(ip, port);
    int fd;
    {
        InNetns in(ns_fd(from));
        fd = ::socket(sa.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    if (::connect(fd, sa.addr(), sa.len) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return std::nullopt;
    }
    std::string got;
    std::size_t sent = 0;
    bool shut = false, eof = false, failed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<char> buf(256 * 1024);
    // Write and read at once, so that a large payload cannot deadlock.
    while (!eof && !failed && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        if (p.revents & POLLIN) {
            ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n > 0)
                got.append(buf.data(), static_cast<std::size_t>(n));
            else if (n == 0)
                eof = true;
            else if (errno != EAGAIN)
                failed = true;
        }
        if (!shut && (p.revents & POLLOUT)) {
            ssize_t n = sent < payload.size()
                            ? ::send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL)
                            : 0;
            if (n > 0)
                sent += static_cast<std::size_t>(n);
            else if (n < 0 && errno != EAGAIN)
                failed = true;
            if (sent == payload.size()) {
                ::shutdown(fd, SHUT_WR);  // half-close: the reply still comes
                shut = true;
            }
        }
        if ((p.revents & (POLLERR | POLLHUP)) && !(p.revents & POLLIN)) failed = true;
    }
    ::close(fd);
    if (!eof || failed) return std::nullopt;
    return got;
}

std::optional<std::string> Lab::echo_udp(const std::string& from, const std::string& ip, int port,
                                         const std::string& payload, int timeout_ms) {
    auto sa = endpoint(ip, port);
    int fd;
    {
        InNetns in(ns_fd(from));
        fd = ::socket(sa.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    std::optional<std::string> reply;
    if (::connect(fd, sa.addr(), sa.len) == 0 &&
        ::send(fd, payload.data(), payload.size(), 0) == static_cast<ssize_t>(payload.size()) &&
        wait_for(fd, POLLIN, timeout_ms)) {
        std::vector<char> buf(65536);
        ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n >= 0) reply = std::string(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

UdpStream::UdpStream(Lab& lab, const std::string& from, const std::string& ip, int port,
                     int src_port, int interval_ms, int duration_ms) {
    auto to = endpoint(ip, port);
    auto local = endpoint(to.family() == AF_INET ? "0.0.0.0" : "::", src_port);
    int fd;
    {
        InNetns in(lab.ns_fd(from));
        fd = ::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) die("socket");
    int out[2];
    // Not connected: an ICMP error (nothing listens for a while) must not end the client.
    if (::bind(fd, local.addr(), local.len) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
        ::close(fd);
        die("bind or pipe for the UDP client");
    }
    pid_ = ::fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        char buf[512];
        for (int i = 0; i < duration_ms / interval_ms; ++i) {
            const int n = std::snprintf(buf, sizeof buf, "datagram-%d", i);
            ::sendto(fd, buf, static_cast<size_t>(n), 0, to.addr(), to.len);
            timespec start{}, now{};
            ::clock_gettime(CLOCK_MONOTONIC, &start);
            for (int left = interval_ms; left > 0;) {  // replies until the next one is due
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, left) == 1) {
                    ssize_t r = ::recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
                    if (r > 0) {
                        buf[r] = '\n';
                        (void)!::write(out[1], buf, static_cast<size_t>(r) + 1);
                    }
                }
                ::clock_gettime(CLOCK_MONOTONIC, &now);
                left = interval_ms - static_cast<int>((now.tv_sec - start.tv_sec) * 1000 +
                                                      (now.tv_nsec - start.tv_nsec) / 1000000);
            }
        }
        ::_exit(0);
    }
    ::close(fd);
    ::close(out[1]);
    replies_ = out[0];
}

UdpStream::~UdpStream() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(replies_);
}

std::optional<std::string> UdpStream::wait_for(
    const std::function<bool(const std::string&)>& wanted, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        for (auto nl = partial_.find('\n'); nl != std::string::npos; nl = partial_.find('\n')) {
            seen_.push_back(partial_.substr(0, nl));
            partial_.erase(0, nl + 1);
            if (wanted(seen_.back())) return seen_.back();
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !lab::wait_for(replies_, POLLIN, static_cast<int>(left.count())))
            return std::nullopt;
        char buf[4096];
        ssize_t n = ::read(replies_, buf, sizeof buf);
        if (n <= 0) return std::nullopt;  // the client has ended
        partial_.append(buf, static_cast<size_t>(n));
    }
}

std::optional<int> Lab::proxy_pid(const std::string& id) const {
    std::ifstream in(state_dir_ + "/containers/" + id + ".json");
    if (!in) return std::nullopt;
    auto j = nlohmann::json::parse(in);
    if (j["proxy"].is_null()) return std::nullopt;
    return j["proxy"]["pid"].get<int>();
}

bool alive(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return false;
    auto close = line.rfind(')');
    return close + 2 < line.size() && line[close + 2] != 'Z';
}

int fd_count(int pid) {
    int n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

namespace {

// The pids of the processes named `comm` of this test process: in its mount
// namespace (isolate_process made it; a lab's processes end with the lab).
// Not by network namespace: portpub enters a container's for a moment to
// look at its interfaces, and a watcher in the middle of a repair would be
// missed.
std::vector<int> processes_named(const std::string& comm_name) {
    std::vector<int> out;
    struct stat own {};
    if (::stat("/proc/self/ns/mnt", &own) != 0) die("stat /proc/self/ns/mnt");
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream comm(it->path() / "comm");
        std::string line;
        struct stat ns {};
        if (!std::getline(comm, line) || line != comm_name) continue;
        if (::stat((it->path() / "ns/mnt").c_str(), &ns) != 0 || ns.st_ino != own.st_ino) continue;
        const int pid = std::stoi(name);
        if (alive(pid)) out.push_back(pid);
    }
    return out;
}

}  // namespace

std::vector<int> proxies() {
    return processes_named("portpub-proxy");
}

std::vector<int> watchers() {
    return processes_named("portpub-watch");
}

bool eventually(int bound_ms, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        ::usleep(10000);
    }
    return true;
}

void wait_until(const std::string& what, int bound_ms, const std::function<bool()>& done) {
    if (!eventually(bound_ms, done))
        throw std::runtime_error("waited " + std::to_string(bound_ms) + " ms for " + what +
                                 ", in vain");
}

std::string route_localnet() {
    return sh(kRouteLocalnetLines);
}

std::string Lab::snapshot() const {
    // Configuration only. Left out is what the kernel derives by itself and
    // no tool can put back: operstate, carrier (LOWER_UP, NO-CARRIER, the
    // routes' linkdown), the default qdisc, IPv6 link-local addresses and
    // routes, and an address still in duplicate address detection.
    return sh("ip -o link show | sed 's/^[0-9]*: //; s/ qlen [0-9]*//; s/ state [A-Z]*//; "
              "s/,LOWER_UP//; s/NO-CARRIER,//; s/ qdisc [a-z_]*//'; echo --; "
              "ip -o addr show | grep -v 'inet6 fe80::' | sed 's/^[0-9]*: //; s/valid_lft.*//; s/ "
              "tentative//'; "
              "echo --; ip route show table all | grep -v -e '^fe80::' -e 'ff00::/8' -e '^local "
              "fe80::' "
              "| "
              "sed 's/ linkdown//'; echo --; nft -s list ruleset; echo --; "
              "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding; echo "
              "--; " +
              std::string(kRouteLocalnetLines) + "; echo --; ls -A " + state_dir_ +
              "/containers 2>/dev/null; ls " + state_dir_ + "/host.json 2>/dev/null; ls -A " +
              state_dir_ + "/logs 2>/dev/null; ls " + state_dir_ +
              "/forwards.json 2>/dev/null; echo --; find /sys/fs/bpf -mindepth 1; "
              "bpftool cgroup show " +
              cgroup2_mount() + " | grep -v '^ID  '; true") +
           "--\nproxies running: " + std::to_string(proxies().size()) +
           "\nwatchers running: " + std::to_string(watchers().size()) + "\n";
}

}  // namespace lab
