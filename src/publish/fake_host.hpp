// A Host of fakes for publisher_test.cpp: every part keeps what it was told
// in memory and writes each call, in order, to one log ("links.ensure_bridge
// portpub0", "firewall.apply +2 -0"), so that a test reads the order of the
// steps and their undoing. A call named in `fail` throws instead, as the
// kernel would refuse it.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/host.hpp"
#include "portpub/naming.hpp"

namespace portpub::test {

struct FakeState {
    std::vector<std::string> log;
    std::set<std::string> fail;  // calls to refuse: "firewall.apply", "proxies.start", ...
    // Called with each call's log entry before it is carried out.
    std::function<void(const std::string&)> watch;
    void call(const std::string& name, const std::string& args = "") {
        log.push_back(args.empty() ? name : name + " " + args);
        if (watch) watch(log.back());
        if (fail.contains(name)) throw Error("injected failure of " + name);
    }
    // The log's entries that start with `prefix`, in order.
    std::vector<std::string> calls(const std::string& prefix) const {
        std::vector<std::string> out;
        for (const auto& l : log)
            if (l.rfind(prefix, 0) == 0) out.push_back(l);
        return out;
    }
    // Where `entry` is in the log; log.size() when it is not there.
    std::size_t at(const std::string& entry) const {
        for (std::size_t i = 0; i < log.size(); ++i)
            if (log[i] == entry) return i;
        return log.size();
    }
};

class FakeFirewall final : public FirewallCommand, public FirewallView {
  public:
    explicit FakeFirewall(FakeState& s) : s_(s) {}
    void apply(const FirewallChange& c) override {
        s_.call("firewall.apply", (c.drop_table ? "drop " : "") + std::string("+") +
                                      std::to_string(c.add.size()) + " -" +
                                      std::to_string(c.del.size()));
        if (c.drop_table) {
            table_ = false;
            elements_.clear();
            return;
        }
        table_ = table_ || c.ensure_base;
        for (const auto& e : c.del)
            elements_.erase({e.map, e.key_bytes()});
        for (const auto& e : c.add)
            elements_[{e.map, e.key_bytes()}] = e;
    }
    void check_owner() override {}
    bool table_exists() override { return table_; }
    std::vector<bool> in_kernel(const std::vector<NatElement>& es) override {
        std::vector<bool> out;
        for (const auto& e : es)
            out.push_back(elements_.contains({e.map, e.key_bytes()}));
        return out;
    }
    std::vector<NatElement> elements(NatMap map) override {
        std::vector<NatElement> out;
        for (const auto& [key, e] : elements_)
            if (key.first == map) out.push_back(e);
        return out;
    }
    bool network_present(const Network&, bool) override { return table_; }
    std::vector<std::string> base_differences() override { return {}; }
    std::size_t element_count() const { return elements_.size(); }
    // What `nft flush ruleset` does to it.
    void flush() {
        table_ = false;
        elements_.clear();
    }

  private:
    FakeState& s_;
    bool table_ = false;
    std::map<std::pair<NatMap, std::vector<std::uint8_t>>, NatElement> elements_;
};

class FakeLinks final : public Links {
  public:
    explicit FakeLinks(FakeState& s) : s_(s) {}
    std::map<std::string, std::string> type;    // link -> "bridge", "veth"
    std::map<std::string, std::string> master;  // port -> bridge

    HostState::Bridge ensure_bridge(const Network& net, bool) override {
        s_.call("links.ensure_bridge", net.bridge);
        HostState::Bridge did;
        if (!type.contains(net.bridge)) {
            type[net.bridge] = "bridge";
            did.created = true;
        }
        return did;
    }
    HostState::Bridge bridge_changes(const Network& net) override {
        HostState::Bridge would;
        would.created = !type.contains(net.bridge);
        return would;
    }
    std::vector<std::string> ports_of(const std::string& bridge) override {
        std::vector<std::string> out;
        for (const auto& [port, m] : master)
            if (m == bridge) out.push_back(port);
        return out;
    }
    std::vector<std::string> host_veths() override {
        std::vector<std::string> out;
        for (const auto& [name, t] : type)
            if (is_host_veth_name(name)) out.push_back(name);
        return out;
    }
    std::vector<std::string> bridges_in_use() override {
        std::set<std::string> out;
        for (const auto& [port, m] : master)
            out.insert(m);
        return {out.begin(), out.end()};
    }
    std::optional<ForeignRoute> foreign_route(const Cidr&, const std::string&,
                                              const std::string&) override {
        return std::nullopt;
    }
    std::optional<std::string> holder_of(const Cidr&) override { return std::nullopt; }
    void check_subnet_free(const Network&, const std::string&) override {}
    void check_bridge(const Network&, const std::vector<Cidr>&) override {}
    void check_container_side(const Publication&, const Netns&, const std::string&) override {}
    void create_container_link(const Publication& p, const Netns&) override {
        s_.call("links.create_container_link", p.host_veth);
        type[p.host_veth] = "veth";
        master[p.host_veth] = p.network.bridge;
    }
    bool on_bridge(const std::string& port, const std::string& bridge) override {
        return master.contains(port) && master[port] == bridge;
    }
    void attach(const std::string& port, const std::string& bridge) override {
        s_.call("links.attach", port);
        master[port] = bridge;
    }
    bool link_exists(const std::string& name) override { return type.contains(name); }
    std::string link_type(const std::string& name) override {
        return type.contains(name) ? type[name] : "";
    }
    void delete_link(const std::string& name) override {
        s_.call("links.delete_link", name);  // no error when it is gone, as the kernel's
        type.erase(name);
        master.erase(name);
        std::erase_if(master, [&](const auto& port) { return port.second == name; });
    }
    void set_link_down(const std::string& name) override { s_.call("links.set_link_down", name); }
    void remove_address(const std::string& link, const Cidr& a) override {
        s_.call("links.remove_address", link + " " + a.str());
    }
    std::vector<std::string> link_differences(const Publication&, const Netns*) override {
        return {};
    }
    std::vector<std::string> repair_link(const Publication&, const Netns&) override { return {}; }
    std::optional<std::string> peer_name(const Publication&, const Netns&) override {
        return std::nullopt;
    }
    bool exists_in(const Netns&, const std::string&) override { return false; }

  private:
    FakeState& s_;
};

class FakeProxies final : public Proxies {
  public:
    explicit FakeProxies(FakeState& s) : s_(s) {}
    ProxyFds open_sockets(const Publication& p) override {
        s_.call("proxies.open_sockets", p.id);
        ProxyFds fds;
        fds.port4 = 40000;
        return fds;
    }
    ProcessId start(const Publication& p, ProxyFds&) override {
        s_.call("proxies.start", p.id);
        ProcessId id{next_pid_++, 1};
        running_[id.pid] = p.id;
        return id;
    }
    void stop(const ProcessId& id) override {
        s_.call("proxies.stop", std::to_string(id.pid));
        running_.erase(id.pid);
    }
    bool running(const ProcessId& id) override { return running_.contains(id.pid); }
    std::vector<FoundProxy> find() override {
        std::vector<FoundProxy> out;
        for (const auto& [pid, id] : running_)
            out.push_back({id, {pid, 1}});
        return out;
    }
    void remove_log(const std::string& id) override { s_.call("proxies.remove_log", id); }
    std::size_t count() const { return running_.size(); }

  private:
    FakeState& s_;
    std::int32_t next_pid_ = 4242;
    std::map<std::int32_t, std::string> running_;
};

class FakeSysctls final : public Sysctls {
  public:
    explicit FakeSysctls(FakeState& s) : s_(s) {}
    std::map<std::string, std::string> values{{"net/ipv4/ip_forward", "0"},
                                              {"net/ipv6/conf/all/forwarding", "0"}};
    std::optional<std::string> read(const std::string& key) override {
        if (!values.contains(key)) return std::nullopt;
        return values[key];
    }
    void write(const std::string& key, const std::string& value) override {
        s_.call("sysctls.write", key + "=" + value);
        values[key] = value;
    }

  private:
    FakeState& s_;
};

// Each namespace path opens as an inode of its own, while `gone` does not name it.
class FakeNamespaces final : public Namespaces {
  public:
    std::set<std::string> gone;
    Netns open(const std::string& path) override {
        if (gone.contains(path)) throw Error("network namespace " + path + " does not exist");
        return Netns::unchecked(UniqueFd(), inode_of(path), path);
    }
    bool alive(const Publication& p) override {
        return !gone.contains(p.netns) && p.netns_inode == inode_of(p.netns);
    }

  private:
    std::uint64_t inode_of(const std::string& path) {
        return inodes_.emplace(path, 4026532001 + inodes_.size()).first->second;
    }
    std::map<std::string, std::uint64_t> inodes_;
};

class FakeConntrack final : public Conntrack {
  public:
    explicit FakeConntrack(FakeState& s) : s_(s) {}
    std::optional<std::string> flush_udp(const std::vector<Mapping>&) override {
        s_.call("conntrack.flush_udp");
        return std::nullopt;
    }

  private:
    FakeState& s_;
};

class FakeProbe final : public HostProbe {
  public:
    void require_capabilities() override {}
    HostPortFacts port_facts() override {
        HostPortFacts facts;
        facts.reserved = [](std::uint16_t) { return false; };
        facts.in_use = [](const std::optional<IpAddress>&, Proto, std::uint16_t) { return false; };
        facts.holder = [](const std::optional<IpAddress>&, Proto, std::uint16_t) {
            return std::string();
        };
        facts.is_local = [](const IpAddress&) { return true; };
        return facts;
    }
    bool has_sctp() override { return true; }
};

// The firewalls beside portpub: an iptables-nft FORWARD per family (a
// policy, and the bridges with portpub's accepts), and a firewalld.
class FakeForeign final : public ForeignFirewallCommands {
  public:
    explicit FakeForeign(FakeState& s) : s_(s) {}
    bool iptables_installed = true;
    bool forward_exists[2] = {false, false};  // ip, ip6
    bool policy_drop[2] = {false, false};
    std::set<std::string> accepts[2];
    FirewalldState firewalld;

    ForeignFirewalls read(const std::vector<std::string>& bridges) override {
        s_.call("foreign.read");
        ForeignFirewalls fw;
        fw.iptables_nft_installed = iptables_installed;
        for (int v6 = 0; v6 < 2; ++v6) {
            if (!forward_exists[v6]) continue;
            ForwardChain c;
            c.kind = ForwardChain::Kind::iptables_nft;
            c.family = v6 ? "ip6" : "ip";
            c.table = "filter";
            c.chain = "FORWARD";
            c.policy_drop = policy_drop[v6];
            c.accepts_in = c.accepts_out = accepts[v6];
            fw.chains.push_back(c);
        }
        fw.firewalld = firewalld;
        for (const auto& b : bridges)
            fw.firewalld.zone_of.try_emplace(b, "");
        return fw;
    }
    HostState::FilterMade add_iptables_accepts(bool ipv6, const std::string& bridge) override {
        s_.call("foreign.add_iptables_accepts", (ipv6 ? "ip6 " : "ip ") + bridge);
        HostState::FilterMade made{!forward_exists[ipv6], !forward_exists[ipv6]};
        forward_exists[ipv6] = true;
        accepts[ipv6].insert(bridge);
        return made;
    }
    void remove_iptables_accepts(bool ipv6, const std::string& bridge) override {
        s_.call("foreign.remove_iptables_accepts", (ipv6 ? "ip6 " : "ip ") + bridge);
        accepts[ipv6].erase(bridge);
    }
    void remove_made(bool ipv6, HostState::FilterMade made) override {
        s_.call("foreign.remove_made", std::string(ipv6 ? "ip6" : "ip") +
                                           (made.table ? " table" : "") +
                                           (made.chain ? " chain" : ""));
        if (made.chain && accepts[ipv6].empty() && !policy_drop[ipv6]) forward_exists[ipv6] = false;
    }
    std::set<std::string> bridges_with_accepts(bool ipv6) override { return accepts[ipv6]; }
    void bind_zone(const std::string& zone, const std::string& bridge) override {
        s_.call("foreign.bind_zone", zone + " " + bridge);
        firewalld.zone_of[bridge] = zone;
    }
    void unbind_zone(const std::string& zone, const std::string& bridge) override {
        s_.call("foreign.unbind_zone", zone + " " + bridge);
        if (firewalld.zone_of[bridge] == zone) firewalld.zone_of[bridge] = "";
    }

  private:
    FakeState& s_;
};

// Counts its calls apart from the log (the order of the other steps is what
// the log is for); `running` is whether a watcher watches.
class FakeWatchers final : public Watchers {
  public:
    std::optional<std::string> start() override {
        ++starts;
        if (fail) return "injected failure of watchers.start";
        running = true;
        return std::nullopt;
    }
    void settle() override {
        ++settles;
        running = false;
    }
    int starts = 0, settles = 0;
    bool running = false, fail = false;
};

// The service map in memory; `attached` is whether the programs are pinned.
class FakeRewriter final : public Rewriter {
  public:
    explicit FakeRewriter(FakeState& s) : s_(s) {}
    std::string default_cgroup() override {
        s_.call("rewriter.default_cgroup");
        return "/sys/fs/cgroup";
    }
    void attach(const std::string& cgroup) override {
        if (attached() && foreign)
            throw Error(
                "the socket programs pinned in /sys/fs/bpf/portpub "
                "serve another network namespace");
        if (attached()) return;  // as the real one: nothing to do
        s_.call("rewriter.attach", cgroup);
        attached_at = cgroup;
    }
    bool attached() override { return attached_at.has_value(); }
    std::vector<std::string> missing() override {
        return attached() ? std::vector<std::string>{} : std::vector<std::string>{"map services"};
    }
    void add(const std::vector<RewriteEntry>& entries) override {
        s_.call("rewriter.add", std::to_string(entries.size()));
        if (!attached()) throw Error("not attached");
        map = overlay(map, entries);
    }
    void remove(const std::vector<RewriteEntry>& entries) override {
        s_.call("rewriter.remove", std::to_string(entries.size()));
        map = uncovered(map, entries, false);
    }
    std::vector<RewriteEntry> entries() override {
        return attached() ? map : std::vector<RewriteEntry>{};
    }
    void detach() override {
        s_.call("rewriter.detach");
        attached_at.reset();
        map.clear();
    }
    std::optional<std::string> attached_at;
    bool foreign = false;  // attached for another namespace
    std::vector<RewriteEntry> map;

  private:
    FakeState& s_;
};

struct FakeHost {
    FakeState state;
    FakeFirewall firewall{state};
    FakeForeign foreign{state};
    FakeLinks links{state};
    FakeProxies proxies{state};
    FakeSysctls sysctls{state};
    FakeNamespaces namespaces;
    FakeConntrack conntrack{state};
    FakeProbe probe;
    FakeWatchers watchers;
    FakeRewriter rewriter{state};
    Host host() {
        return Host{firewall,   firewall,  foreign, links,    proxies, sysctls,
                    namespaces, conntrack, probe,   watchers, rewriter};
    }
};

}  // namespace portpub::test
