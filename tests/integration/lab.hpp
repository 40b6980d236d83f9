// A private topology for one integration test, built inside namespaces the
// test process makes for itself; the namespace the test run started in is
// never changed.
//
//   ext (192.0.2.2/24) --veth-- host: ext0 192.0.2.1/24 + 192.0.2.3/24
//                                     portpub0 198.51.100.1/24 (made by portpub)
//                                       |-- container A 198.51.100.x
//                                       |-- container B ...
//
// "host" is a fresh network namespace of the test process itself; /run is a
// private tmpfs, so /run/netns and /run/portpub are the test's own.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lab {

struct RunResult {
    int status = -1;  // exit code, or 128 + signal
    std::string out, err;
    double wall_ms = 0;   // from fork to exit
    long max_rss_kb = 0;  // peak resident memory of the program
};

// Runs argv (no shell), capturing stdout and stderr; `in_child` runs just
// before exec.
RunResult run(const std::vector<std::string>& argv, const std::function<void()>& in_child = {});

// Enters a private mount and network namespace for the rest of this process
// (once), with a tmpfs on /run.
void isolate_process();

// Runs a shell command for test set-up or inspection; throws on failure.
std::string sh(const std::string& command);

inline constexpr const char* kHostIp = "192.0.2.1";
inline constexpr const char* kHostIp2 = "192.0.2.3";
inline constexpr const char* kExtIp = "192.0.2.2";
inline constexpr const char* kSubnet = "198.51.100.0/24";
inline constexpr const char* kHostIp6 = "2001:db8::1";
inline constexpr const char* kExtIp6 = "2001:db8::2";
// remote(): the lab host's end and the remote namespace's end.
inline constexpr const char* kRemoteGw = "198.51.100.1";
inline constexpr const char* kRemoteIp = "198.51.100.2";
inline constexpr const char* kRemoteGw6 = "2001:db8:1::1";
inline constexpr const char* kRemoteIp6 = "2001:db8:1::2";

class Lab {
  public:
    // bridge_nf: the value of net.bridge.bridge-nf-call-iptables and
    // -ip6tables in the host namespace (br_netfilter active or not).
    explicit Lab(int bridge_nf = 0);
    ~Lab();
    Lab(const Lab&) = delete;
    Lab& operator=(const Lab&) = delete;

    // True when this kernel has br_netfilter, so bridge_nf = 1 means something.
    static bool has_bridge_netfilter();

    // A container namespace /run/netns/NAME with lo down (as `ip netns add`
    // leaves it) and pp-echo on TCP 80, 81 and UDP 53, 54 (lines) and on TCP
    // and UDP 7 (byte-exact echo). Returns its path.
    std::string container(const std::string& name);
    // Another machine: namespace NAME joined to the host by a veth of its own
    // (host rem0 198.51.100.1/24, 2001:db8:1::1/64; NAME 198.51.100.2,
    // 2001:db8:1::2) with no route but its own subnets, so that a reply
    // to anyone else only returns when the host masquerades. (Its subnet is
    // the containers' kSubnet: a lab has one or the other.)
    void remote(const std::string& name);
    // pp-echo named NAME inside namespace NAME (e.g. "ext"), on TCP 80, 81
    // and UDP 53, 54.
    void serve(const std::string& name);
    void kill_servers(const std::string& name);
    // Runs argv inside namespace NAME ("host" too), detached from the test's
    // output; it ends with the lab.
    int spawn(const std::string& name, const std::vector<std::string>& argv);
    // What a runtime does when a container exits: its processes end and the
    // namespace file is removed, so the namespace and its interfaces vanish.
    void remove_container(const std::string& name);

    // false: every up and forward of portpub() and up() gets --no-watch, for
    // a test of what a user sees and mends by hand (check, restore, forward
    // apply), where no watcher may mend it first.
    bool watch = true;
    // "proxy": every up of portpub() and up() gets --loopback proxy, for the
    // tests that run on both ways of serving loopback.
    std::string loopback = "kernel";

    // portpub with --state-dir of this lab appended.
    RunResult portpub(std::vector<std::string> args,
                      const std::function<void()>& in_child = {}) const;
    // Runs `program` (portpub by default) as a CNI plugin, with `vars` as
    // its only CNI_* variables and `config` on its stdin.
    RunResult cni(const std::map<std::string, std::string>& vars, const std::string& config,
                  const std::string& program = PORTPUB_BIN) const;
    // `portpub up --netns PATH --subnet 198.51.100.0/24 -p SPEC...`, must succeed.
    RunResult up(const std::string& netns, const std::vector<std::string>& specs,
                 std::vector<std::string> extra = {}) const;

    // One request from `from` ("host", "ext" or a container name); the echo
    // server's reply, or nullopt when nothing answered within the timeout.
    std::optional<std::string> tcp(const std::string& from, const std::string& ip, int port,
                                   int timeout_ms = 3000);
    // The name of the container whose echo server answers tcp(), or "" for none.
    std::string answering(const std::string& from, const std::string& ip, int port,
                          int timeout_ms = 3000);
    std::optional<std::string> udp(const std::string& from, const std::string& ip, int port,
                                   int timeout_ms = 3000);
    // One datagram from a new socket (so a new source port), without waiting for a reply.
    void udp_send(const std::string& from, const std::string& ip, int port);
    // `payload` to an echo port and everything that comes back: the client
    // writes all, shuts its writing half, and reads until the end of file.
    std::optional<std::string> echo_tcp(const std::string& from, const std::string& ip, int port,
                                        const std::string& payload, int timeout_ms = 60000);
    std::optional<std::string> echo_udp(const std::string& from, const std::string& ip, int port,
                                        const std::string& payload, int timeout_ms = 3000);

    // The proxy of a container as its record names it, when it has one.
    std::optional<int> proxy_pid(const std::string& id) const;
    // The pid of container NAME's echo server.
    int server_pid(const std::string& name) { return servers_.at(name).front(); }

    // What a user looks at to see that nothing is left: links, addresses,
    // routes, the nftables ruleset, ip_forward and IPv6 forwarding, route_localnet of all,
    // default and every interface (never anything but 0), records, proxies
    // and watchers running.
    std::string snapshot() const;

    const std::string& state_dir() const { return state_dir_; }
    int ns_fd(const std::string& name);

  private:
    std::string state_dir_;
    std::map<std::string, int> ns_fds_;
    std::map<std::string, std::vector<int>> servers_;
};

// A UDP client that keeps sending from one source port, as a game or a DNS
// forwarder does: a datagram ("datagram-N") every `interval_ms` for at most
// `duration_ms`, from a child process with a socket in namespace `from`. It
// keeps every reply, and ends with this object.
class UdpStream {
  public:
    UdpStream(Lab& lab, const std::string& from, const std::string& ip, int port, int src_port,
              int interval_ms = 50, int duration_ms = 12000);
    ~UdpStream();
    UdpStream(const UdpStream&) = delete;
    UdpStream& operator=(const UdpStream&) = delete;

    // The first reply from now on that `wanted` accepts, or nullopt when none
    // came within the timeout. Replies passed over are kept in seen().
    std::optional<std::string> wait_for(const std::function<bool(const std::string&)>& wanted,
                                        int timeout_ms);
    const std::vector<std::string>& seen() const { return seen_; }

  private:
    int pid_ = -1;
    int replies_ = -1;  // the child writes each reply there, a line each
    std::string partial_;
    std::vector<std::string> seen_;
};

// Waits for what a user would wait for too (a process to exit after a
// signal, a runtime to say a container stopped): polls `done` every 10 ms
// until it holds. When `bound_ms` passes first it throws, saying what it
// waited for and for how long, so the test fails there and says why.
void wait_until(const std::string& what, int bound_ms, const std::function<bool()>& done);
// The same, answering whether `done` came to hold within `bound_ms`, for a
// test that asserts it (CHECK(eventually(...)) reports the bound it names).
bool eventually(int bound_ms, const std::function<bool()>& done);

// The route_localnet setting of all, default and each interface of the
// current network namespace, one "/proc/sys/net/ipv4/conf/NAME/route_localnet:VALUE" a line.
std::string route_localnet();

// Where the cgroup v2 hierarchy is mounted: in a lab, the test process's own
// child cgroup (isolate_process), where portpub's socket programs attach.
std::string cgroup_root();

// True while the process runs (a zombie does not).
bool alive(int pid);
// How many file descriptors the process has open.
int fd_count(int pid);
// The pids of the portpub proxies of this test process (in its mount
// namespace: those of its labs).
std::vector<int> proxies();
// The pids of its portpub watchers.
std::vector<int> watchers();

// The lines only in `a` ("- ...") and only in `b` ("+ ..."); empty when equal.
std::string diff_lines(const std::string& a, const std::string& b);

// main() of a benchmark: runs `body`, turning an exception into a message and
// exit status 1 after the stack (labs included) has unwound.
int guarded_main(int (*body)(int, char**), int argc, char** argv);

// Split a reply "NAME PEER MESSAGE" into its words.
std::vector<std::string> words(const std::string& reply);

}  // namespace lab
