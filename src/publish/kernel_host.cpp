// The real Host, part by part: each interface of host.hpp forwards to the
// kernel layer's functions and classes. The nftables and route sockets are
// opened on first use: `ls` and a CNI CHECK of a record that is gone open
// none, and a kernel without nftables fails only the commands that use it.
#include "portpub/kernel_host.hpp"

#include <netinet/in.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <optional>

#include "portpub/capabilities.hpp"
#include "portpub/conntrack.hpp"
#include "portpub/host_ports.hpp"
#include "portpub/logger.hpp"
#include "portpub/nft_firewall.hpp"
#include "portpub/sock_rewrite.hpp"
#include "portpub/sysctl.hpp"
#include "portpub/watcher_process.hpp"

namespace portpub {

namespace {

class LazyFirewall final : public FirewallCommand, public FirewallView {
  public:
    explicit LazyFirewall(std::string owner) : owner_(std::move(owner)) {}
    void apply(const FirewallChange& change) override {
        try {
            nft().apply(change);
        } catch (...) {
            // A batch whose outcome is unknown may still be answered on this
            // socket: the next command of this process gets a fresh one.
            nft_.reset();
            throw;
        }
    }
    void check_owner() override { nft().check_owner(); }
    bool table_exists() override { return nft().table_exists(); }
    std::vector<bool> in_kernel(const std::vector<NatElement>& elements) override {
        return nft().in_kernel(elements);
    }
    std::vector<NatElement> elements(NatMap map) override { return nft().elements(map); }
    bool network_present(const Network& net, bool isolated) override {
        return nft().network_present(net, isolated);
    }
    std::vector<std::string> base_differences() override { return nft().base_differences(); }

  private:
    NftFirewall& nft() {
        if (!nft_) nft_.emplace(owner_);
        return *nft_;
    }
    std::string owner_;
    std::optional<NftFirewall> nft_;
};

class ProcessProxies final : public Proxies {
  public:
    ProcessProxies(std::string owner, std::filesystem::path state_dir)
        : owner_(std::move(owner)), state_dir_(std::move(state_dir)) {}
    ProxyFds open_sockets(const Publication& p) override { return open_proxy_sockets(p); }
    ProcessId start(const Publication& p, ProxyFds& fds) override {
        return start_proxy(p, fds, owner_);
    }
    void stop(const ProcessId& id) override { stop_process(id); }
    bool running(const ProcessId& id) override { return process_running(id); }
    std::vector<FoundProxy> find() override { return find_proxies(owner_); }
    void remove_log(const std::string& id) override {
        portpub::remove_log(log_path(state_dir_, id));
    }

  private:
    std::string owner_;
    std::filesystem::path state_dir_;
};

class ProcessWatchers final : public Watchers {
  public:
    explicit ProcessWatchers(std::filesystem::path state_dir) : state_dir_(std::move(state_dir)) {}
    std::optional<std::string> start() override { return start_watcher(state_dir_); }
    void settle() override { settle_watcher(state_dir_); }

  private:
    std::filesystem::path state_dir_;
};

class ProcSysctls final : public Sysctls {
  public:
    std::optional<std::string> read(const std::string& key) override { return read_sysctl(key); }
    void write(const std::string& key, const std::string& value) override {
        write_sysctl(key, value);
    }
};

class NamespaceFiles final : public Namespaces {
  public:
    Netns open(const std::string& path) override { return Netns::open(path); }
    bool alive(const Publication& p) override { return namespace_alive(p); }
};

class KernelConntrack final : public Conntrack {
  public:
    std::optional<std::string> flush_udp(const std::vector<Mapping>& published) override {
        return try_flush_udp_conntrack(published);
    }
};

class KernelProbe final : public HostProbe {
  public:
    void require_capabilities() override { portpub::require_capabilities(); }
    HostPortFacts port_facts() override { return read_host_port_facts(); }
    bool has_sctp() override {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP));
        return static_cast<bool>(fd);
    }
};

class BpfRewriter final : public Rewriter {
  public:
    std::string default_cgroup() override { return SockRewrite::cgroup2_root(); }
    void attach(const std::string& cgroup) override { sock_.attach(cgroup); }
    bool attached() override { return sock_.attached(); }
    std::vector<std::string> missing() override { return sock_.missing(); }
    void add(const std::vector<RewriteEntry>& entries) override { sock_.add(entries); }
    void remove(const std::vector<RewriteEntry>& entries) override { sock_.remove(entries); }
    std::vector<RewriteEntry> entries() override { return sock_.entries(); }
    void detach() override { sock_.detach(); }

  private:
    SockRewrite sock_;
};

}  // namespace

bool namespace_alive(const Publication& p) {
    struct stat st {};
    return ::stat(p.netns.c_str(), &st) == 0 && st.st_ino == p.netns_inode;
}

struct KernelHost::Parts {
    Parts(const std::string& owner, const std::filesystem::path& state_dir)
        : firewall(owner), proxies(owner, state_dir), watchers(owner) {}
    LazyFirewall firewall;
    KernelForeignFirewalls foreign;
    NetlinkLinks links;
    ProcessProxies proxies;
    ProcSysctls sysctls;
    NamespaceFiles namespaces;
    KernelConntrack conntrack;
    KernelProbe probe;
    ProcessWatchers watchers;
    BpfRewriter rewriter;
};

KernelHost::KernelHost(std::string owner, std::filesystem::path state_dir)
    : parts_(std::make_unique<Parts>(owner, state_dir)) {}

KernelHost::~KernelHost() = default;

Host KernelHost::host() {
    auto& p = *parts_;
    return Host{p.firewall,   p.firewall,  p.foreign, p.links,    p.proxies, p.sysctls,
                p.namespaces, p.conntrack, p.probe,   p.watchers, p.rewriter};
}

}  // namespace portpub
