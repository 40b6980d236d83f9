#include "portpub/publisher.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "portpub/capabilities.hpp"
#include "portpub/conntrack.hpp"
#include "portpub/crash_points.hpp"
#include "portpub/error.hpp"
#include "portpub/firewall_change.hpp"
#include "portpub/forward_state.hpp"
#include "portpub/host_ports.hpp"
#include "portpub/links.hpp"
#include "portpub/logger.hpp"
#include "portpub/nat_elements.hpp"
#include "portpub/netns.hpp"
#include "portpub/nft_firewall.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_sockets.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

constexpr const char* kIpForward = "net/ipv4/ip_forward";
constexpr const char* kIp6Forward = "net/ipv6/conf/all/forwarding";

// Undo actions for the steps taken so far, run in reverse unless committed.
class Rollback {
  public:
    ~Rollback() {
        if (committed_) return;
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception& e) {
                std::cerr << "portpub: while undoing a failed up: " << e.what() << "\n";
            }
        }
    }
    void add(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
    void commit() { committed_ = true; }

  private:
    std::vector<std::function<void()>> steps_;
    bool committed_ = false;
};

std::vector<Publication> without(const std::vector<Publication>& all, const std::string& id) {
    std::vector<Publication> out;
    for (const auto& p : all)
        if (p.id != id) out.push_back(p);
    return out;
}

bool kernel_has_sctp() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP));
    return static_cast<bool>(fd);
}

}  // namespace

bool namespace_alive(const Publication& p) {
    struct stat st {};
    return ::stat(p.netns.c_str(), &st) == 0 && st.st_ino == p.netns_inode;
}

std::vector<Publication> Publisher::load_records() {
    auto records = store_.load_all();
    unusable_ = std::move(records.unusable);
    return std::move(records.usable);
}

Records Publisher::list() const {
    auto lock = store_.lock_shared();
    return store_.load_all();
}

void Publisher::add_notes(const UpRequest& req, const Publication& pub) {
    bool unserved = false, sctp = false, udp_unserved = false;
    for (const auto& m : pub.mappings) {
        unserved =
            unserved || (!req.proxy && (proxy_serves_loopback4(m) || proxy_serves_v6(pub, m)));
        sctp = sctp || m.proto == Proto::sctp;
        udp_unserved =
            udp_unserved || (req.proxy && req.runtime_holds_ports && m.proto == Proto::udp &&
                             (proxy_serves_loopback4(m) || proxy_serves_v6(pub, m)));
    }
    if (udp_unserved)
        notes_.push_back(
            "the runtime holds the published ports: UDP to 127.0.0.1, ::1 and from "
            "IPv6 clients is not served for " +
            pub.id);
    if (unserved)
        notes_.push_back(
            "--no-proxy: connections to 127.0.0.1, ::1 and from IPv6 clients are not "
            "served for " +
            pub.id);
    if (sctp && !kernel_has_sctp())
        notes_.push_back(
            "SCTP mappings get kernel NAT only, and this kernel has no SCTP: SCTP on "
            "127.0.0.1 and ::1 is not served");
}

std::string Publisher::owner() const {
    std::error_code ec;
    auto path = std::filesystem::weakly_canonical(std::filesystem::absolute(store_.dir(), ec), ec);
    return ec ? store_.dir().string() : path.string();
}

Publication Publisher::up(const UpRequest& req) {
    validate_request(req);  // bad input first: it is the most likely mistake
    notes_.clear();
    require_capabilities();
    auto ns = Netns::open(req.netns);
    const NetnsIdentity identity{ns.path(), ns.inode()};
    auto lock = store_.lock();
    auto existing = load_records();
    for (const auto& u : unusable_) {
        // Its record would be written over: what it names is then lost.
        if (std::filesystem::path(u.file).filename() == publication_id(req, identity) + ".json")
            throw Error(u.advice());
        notes_.push_back(u.advice());
    }
    HostState host = store_.load_host();
    // What `up` changes on the host is written there first.
    if (store_.host_problem()) throw Error(*store_.host_problem());
    finish_interrupted(existing, host);
    auto facts = read_host_port_facts();
    add_forward_holds(facts, store_);  // a host port `portpub forward` holds is taken
    // An `up` again for the same id replaces that publication: the ports its
    // proxy holds are about to be released, so they do not count as in use.
    // Not when it is dead: whoever holds them now keeps them.
    const std::string id = publication_id(req, identity);
    if (auto old = std::find_if(existing.begin(), existing.end(),
                                [&](const Publication& p) { return p.id == id; });
        old != existing.end() && old->proxy &&
        process_running({old->proxy->pid, old->proxy->start_time})) {
        auto held_by_old = [mappings = old->mappings](const std::optional<IpAddress>& ip,
                                                      Proto proto, std::uint16_t port) {
            Mapping probe{ip, proto, port, 0, 1};
            return std::any_of(mappings.begin(), mappings.end(),
                               [&](const Mapping& m) { return conflicts(m, probe); });
        };
        facts.in_use = [in_use = facts.in_use, held_by_old](const std::optional<IpAddress>& ip,
                                                            Proto proto, std::uint16_t port) {
            return in_use(ip, proto, port) && !held_by_old(ip, proto, port);
        };
    }
    // Addresses whose veth is there belong to some container, recorded or not.
    UnrecordedUse unrecorded;
    unrecorded.records_incomplete = !unusable_.empty();
    const auto replaced = std::find_if(existing.begin(), existing.end(),
                                       [&](const Publication& p) { return p.id == id; });
    auto held_by_other = [&](const IpAddress& a) {
        return replaced == existing.end() || replaced->address != a;
    };
    for (const auto& name : Links().host_veths())
        if (auto a = host_veth_address(name); a && held_by_other(*a))
            unrecorded.addresses.insert(*a);
    // An unreadable record's container may have no veth now (its namespace
    // went), and its ports still lead to its address.
    if (unrecorded.records_incomplete)
        if (NftFirewall firewall(owner()); firewall.table_exists())
            for (NatMap map : {NatMap::wildcard4, NatMap::bound4})
                for (const auto& e : firewall.elements(map))
                    if (auto a = dnat_target(e); a && held_by_other(*a))
                        unrecorded.addresses.insert(*a);
    Plan plan = plan_up(req, identity, existing, facts, namespace_alive, unrecorded);
    const Publication& pub = plan.publication;
    add_notes(req, pub);
    auto others = without(existing, pub.id);
    // Everything that can refuse without changing anything comes first, and
    // before a publication this one replaces is touched.
    preflight(pub, ns, plan.replaces ? &*plan.replaces : nullptr, others, host);
    if (plan.replaces) {
        // Same id again: a full `down` of the old publication, then an `up`
        // of the new one, whose own rollback leaves nothing if it fails.
        teardown(*plan.replaces, others, host);
        try {
            return apply(pub, others, ns, host);
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (the earlier publication of " + pub.id +
                        " was removed; run up again once the problem is fixed)");
        }
    }
    return apply(pub, others, ns, host);
}

namespace {

// The bridge (made, or an existing one brought up and addressed). What it
// will change is written to the host state first, so that a crash half way
// leaves a record of it.
void make_bridge(const Network& net, Links& links, HostState& host, StateStore& store,
                 Rollback* rollback) {
    const bool ours = host.bridges.contains(net.bridge);
    const auto would = links.bridge_changes(net);
    auto& owned = host.bridges[net.bridge];
    const auto before = owned;
    owned.created = owned.created || would.created;
    owned.address_added = owned.address_added || would.address_added;
    owned.address6_added = owned.address6_added || would.address6_added;
    owned.brought_up = owned.brought_up || would.brought_up;
    if (!ours || owned != before) store.save_host(host);
    // A bridge portpub makes anew has its MAC pinned, as the first `up` does.
    auto did = links.ensure_bridge(net, !ours || would.created);
    if (!rollback) return;
    if (did.created) {
        rollback->add([&links, name = net.bridge] { links.delete_link(name); });
    } else {
        if (did.brought_up)
            rollback->add([&links, name = net.bridge] { links.set_link_down(name); });
        if (did.address_added)
            rollback->add([&links, net] {
                links.remove_address(net.bridge, {net.gateway, net.subnet.prefix});
            });
        if (did.address6_added)
            rollback->add([&links, net] {
                links.remove_address(net.bridge, {net.gateway6, net.subnet6->prefix});
            });
    }
}

// A port of `bridge` that portpub did not make (its veths have names of
// portpub's): a bridge with one is someone else's now, whatever host.json
// says, and is not deleted.
std::optional<std::string> foreign_port(Links& links, const std::string& bridge) {
    for (const auto& port : links.ports_of(bridge))
        if (!is_host_veth_name(port)) return port;
    return std::nullopt;
}

// A forwarding setting portpub turns on and puts back.
struct Forwarding {
    const char* key;
    const char* name;
    std::optional<std::string> HostState::*before;
};
const Forwarding kForward4{kIpForward, "ip_forward", &HostState::ip_forward_before};
const Forwarding kForward6{kIp6Forward, "IPv6 forwarding", &HostState::ip6_forward_before};

// Forwarding on for IPv4, and for IPv6 with `ipv6`, each earlier value
// written down first. Returns the settings changed, with their earlier values.
std::vector<std::pair<const Forwarding*, std::string>> enable_forwarding(HostState& host,
                                                                         StateStore& store,
                                                                         bool ipv6) {
    std::vector<std::pair<const Forwarding*, std::string>> changed;
    for (const Forwarding* f : {&kForward4, &kForward6}) {
        if (f == &kForward6 && !ipv6) continue;
        auto value = read_sysctl(f->key);
        if (!value || *value == "1") continue;
        if (!(host.*(f->before))) {
            host.*(f->before) = *value;
            store.save_host(host);
        }
        write_sysctl(f->key, "1");
        changed.emplace_back(f, *value);
    }
    return changed;
}

// Puts back the forwarding settings that neither a record of `remaining` nor
// a remote forward (portpub forward --to) needs; says what it did. A failed
// save of the host state stops nothing: `saved` turns false.
std::vector<std::string> put_forwarding_back(HostState& host, StateStore& store,
                                             const std::vector<Publication>& remaining,
                                             bool& saved) {
    std::vector<std::string> done;
    const bool need4 = !remaining.empty() || forwards_need_ip_forward(store);
    const bool need6 = std::any_of(remaining.begin(), remaining.end(),
                                   [](const Publication& r) { return r.address6.has_value(); }) ||
                       forwards_need_ip6_forward(store);
    for (const Forwarding* f : {&kForward4, &kForward6}) {
        auto& before = host.*(f->before);
        if (!before || (f == &kForward4 ? need4 : need6)) continue;
        write_sysctl(f->key, *before);
        done.push_back("put " + std::string(f->name) + " back to " + *before);
        before.reset();
        try {
            store.save_host(host);
            saved = true;
        } catch (const Error&) {
            saved = false;
        }
    }
    return done;
}

}  // namespace

void Publisher::preflight(const Publication& pub, const Netns& ns, const Publication* replaced,
                          const std::vector<Publication>& others, const HostState& host) {
    // A kernel without nftables, a table of another state directory.
    NftFirewall(owner()).check_owner();
    // A container attached by another CNI plugin: its subnet is on that
    // plugin's bridge, and the links are that plugin's to make.
    if (pub.host_veth.empty()) return;
    Links links;
    // What the replaced publication has goes with it: its bridge's routes
    // (when the new one has another bridge), and its interface in the
    // container (when it is the same namespace).
    const bool other_bridge = replaced && replaced->network.bridge != pub.network.bridge;
    links.check_subnet_free(pub.network, other_bridge ? replaced->network.bridge : "");
    // On its own bridge, what its teardown takes away does not count: the
    // bridge portpub made, or the addresses it added, when no other
    // container (an unreadable record may be one) keeps them.
    std::vector<Cidr> leaving;
    bool bridge_leaves = false;
    const auto owned = host.bridges.find(pub.network.bridge);
    if (replaced && !other_bridge && owned != host.bridges.end() && unusable_.empty() &&
        std::none_of(others.begin(), others.end(), [&](const Publication& o) {
            return o.network.bridge == pub.network.bridge;
        })) {
        bridge_leaves = owned->second.created;
        if (owned->second.address_added)
            leaving.push_back({replaced->network.gateway, replaced->network.subnet.prefix});
        if (owned->second.address6_added && replaced->network.subnet6)
            leaving.push_back({replaced->network.gateway6, replaced->network.subnet6->prefix});
    }
    if (!bridge_leaves) links.check_bridge(pub.network, leaving);
    const bool same_link =
        replaced && !replaced->host_veth.empty() && replaced->netns_inode == ns.inode();
    links.check_container_side(pub, ns, same_link ? replaced->ifname : "");
}

Publication Publisher::apply(Publication pub, const std::vector<Publication>& others,
                             const Netns& ns, HostState& host) {
    Links links;
    NftFirewall firewall(owner());
    const bool own_links = !pub.host_veth.empty();

    // The record comes before the changes it describes: whatever happens to
    // this process from here on, the next portpub finds what to take apart.
    pub.phase = Publication::Phase::pending;
    store_.save(pub);
    Rollback rollback;  // after links and firewall: its undo steps use them
    rollback.add([this, id = pub.id, host_before = host] {
        store_.save_host(host_before);
        store_.remove(id);
    });
    crash_point(Step::up_pending_saved);

    for (const auto& [setting, value] : enable_forwarding(host, store_, pub.address6.has_value()))
        rollback.add([key = setting->key, value] { write_sysctl(key, value); });
    crash_point(Step::up_ip_forward);

    if (own_links) {
        make_bridge(pub.network, links, host, store_, &rollback);
        crash_point(Step::up_bridge);
        // Planned free; one that appeared since is not this up's to delete.
        if (links.link_exists(pub.host_veth))
            throw Error("interface " + pub.host_veth + " appeared while up ran; run up again");
        rollback.add([&links, name = pub.host_veth] { links.delete_link(name); });
        links.create_container_link(pub, ns);
        crash_point(Step::up_veth);
    }

    // The proxy's sockets come before the rules: the redirects name its
    // listeners' ports, and a port in use must fail before anything points at it.
    std::optional<ProxyFds> proxy_fds;
    if (pub.proxy) {
        proxy_fds = open_proxy_sockets(pub);
        pub.proxy->listen4 = proxy_fds->port4;
        pub.proxy->listen6 = proxy_fds->port6;
        pub.proxy->ipv6 = proxy_fds->ipv6;
        store_.save(pub);  // the redirects' keys, for a teardown after a crash
    }

    firewall.apply(change_for_up(pub));
    rollback.add([&firewall, pub, others, shared = !unusable_.empty()] {
        firewall.apply(change_for_down(pub, others, shared));
    });
    if (auto note = try_flush_udp_conntrack(pub.mappings)) notes_.push_back(*note);
    crash_point(Step::up_firewall);

    if (pub.proxy) {
        auto started = start_proxy(pub, *proxy_fds, owner());
        proxy_fds.reset();  // the proxy holds them now
        pub.proxy->pid = started.pid;
        pub.proxy->start_time = started.start_time;
        rollback.add([this, started, id = pub.id] {
            stop_process(started);
            remove_log(log_path(store_.dir(), id));
        });
    }
    crash_point(Step::up_proxy_started);

    pub.phase = Publication::Phase::published;
    store_.save(pub);
    rollback.commit();
    crash_point(Step::up_published);
    return pub;
}

namespace {

const Publication* find_target(const std::vector<Publication>& records, const DownRequest& req) {
    const Publication* target = nullptr;
    if (req.id) {
        for (const auto& p : records)
            if (p.id == *req.id) target = &p;
    } else if (req.netns) {
        const auto path = normalize_netns_path(*req.netns);
        for (const auto& p : records)
            if (p.netns == path) target = &p;
        if (!target) {
            // The same namespace under another path (e.g. /proc/PID/ns/net).
            try {
                auto ns = Netns::open(*req.netns);
                for (const auto& p : records)
                    if (p.netns_inode == ns.inode()) target = &p;
            } catch (const Error&) {
                // gone or not a namespace: nothing else to match
            }
        }
    }
    return target;
}

}  // namespace

std::optional<Publication> Publisher::down(const DownRequest& req) {
    if (req.id) validate_id(*req.id);
    if (req.netns) validate_netns_path(*req.netns);
    require_capabilities();
    auto lock = store_.lock();
    auto existing = load_records();
    if (req.id)
        for (const auto& u : unusable_)
            if (std::filesystem::path(u.file).filename() == *req.id + ".json")
                throw Error(u.advice());
    notes_.clear();
    for (const auto& u : unusable_)
        notes_.push_back(u.advice());
    HostState host = store_.load_host();
    if (store_.host_problem()) notes_.push_back(*store_.host_problem());
    // An interrupted up or down of this very container is finished here too.
    const auto finished = finish_interrupted(existing, host);
    if (const auto* done = find_target(finished, req)) return *done;
    const auto* target = find_target(existing, req);
    if (!target) return std::nullopt;
    if (req.only_if)
        if (auto why = req.only_if(*target)) {
            notes_.push_back(*why);
            return std::nullopt;
        }
    const Publication pub = *target;
    teardown(pub, without(existing, pub.id), host);
    return pub;
}

namespace {

// What of `pub` the kernel lacks, one phrase each.
std::vector<std::string> missing_of(const Publication& pub, NftFirewall& firewall, Links& links) {
    std::vector<std::string> missing;
    const bool alive = namespace_alive(pub);
    if (!alive) missing.push_back("namespace " + pub.netns + " is gone");
    for (const Forwarding* f : {&kForward4, &kForward6})
        if (f == &kForward4 || pub.address6)
            if (auto value = read_sysctl(f->key); value && *value != "1")
                missing.push_back(std::string(f->name) + " is " + *value + ", not 1");
    if (!pub.host_veth.empty()) {
        if (!links.link_exists(pub.network.bridge)) {
            missing.push_back("bridge " + pub.network.bridge + " is missing");
        } else {
            const auto would = links.bridge_changes(pub.network);
            if (would.address_added)
                missing.push_back("address " + pub.network.gateway.str() + " of bridge " +
                                  pub.network.bridge + " is missing");
            if (would.address6_added)
                missing.push_back("address " + pub.network.gateway6.str() + " of bridge " +
                                  pub.network.bridge + " is missing");
            if (would.brought_up) missing.push_back("bridge " + pub.network.bridge + " is down");
        }
        if (!links.link_exists(pub.host_veth))
            missing.push_back("veth " + pub.host_veth + " is missing");
        else if (!links.on_bridge(pub.host_veth, pub.network.bridge))
            missing.push_back("veth " + pub.host_veth + " is not on bridge " + pub.network.bridge);
        std::optional<Netns> ns;
        if (alive) ns = Netns::open(pub.netns);
        for (auto& d : links.link_differences(pub, ns ? &*ns : nullptr))
            missing.push_back(std::move(d));
    }
    if (!firewall.table_exists()) {
        missing.push_back("table inet " + std::string(kTableName) + " is missing");
    } else {
        if (!firewall.network_present(pub.network, !pub.host_veth.empty()))
            missing.push_back("subnet " + pub.network.subnet.str() + " on bridge " +
                              pub.network.bridge + " is missing from the table's sets");
        const auto elements = nat_elements(pub);
        const auto held = firewall.in_kernel(elements);
        for (std::size_t i = 0; i < elements.size(); ++i)
            if (!held[i]) missing.push_back("map element " + describe(elements[i]) + " is missing");
    }
    if (pub.proxy && !process_running({pub.proxy->pid, pub.proxy->start_time}))
        missing.push_back("proxy (pid " + std::to_string(pub.proxy->pid) + ") is not running");
    return missing;
}

std::string interrupted(const Publication& p) {
    return p.phase == Publication::Phase::pending ? "an up of it was interrupted"
                                                  : "a down of it was interrupted";
}

// Elements of the table that no record accounts for.
std::vector<NatElement> stray_elements(NftFirewall& firewall,
                                       const std::vector<Publication>& records) {
    std::map<NatMap, std::set<std::vector<std::uint8_t>>> wanted;
    for (const auto& p : records)
        for (const auto& e : nat_elements(p))
            wanted[e.map].insert(e.key_bytes());
    std::vector<NatElement> stray;
    for (NatMap map : kNatMaps)
        for (const auto& e : firewall.elements(map))
            if (!wanted[map].contains(e.key_bytes())) stray.push_back(e);
    return stray;
}

// Proxies that run for this state directory but not as their record says.
std::vector<FoundProxy> stray_proxies(const std::string& owner,
                                      const std::vector<Publication>& records) {
    std::vector<FoundProxy> stray;
    for (const auto& found : find_proxies(owner)) {
        const bool recorded =
            std::any_of(records.begin(), records.end(), [&](const Publication& p) {
                return p.id == found.id && p.proxy && p.proxy->pid == found.process.pid &&
                       p.proxy->start_time == found.process.start_time;
            });
        if (!recorded) stray.push_back(found);
    }
    return stray;
}

}  // namespace

std::optional<std::vector<std::string>> Publisher::check(const std::string& id) {
    validate_id(id);
    auto lock = store_.lock_shared();
    const auto existing = load_records();
    auto it = std::find_if(existing.begin(), existing.end(),
                           [&](const Publication& p) { return p.id == id; });
    if (it == existing.end()) return std::nullopt;
    if (it->phase != Publication::Phase::published)
        return std::vector<std::string>{interrupted(*it) + " (portpub gc removes it)"};
    NftFirewall firewall(owner());
    Links links;
    return missing_of(*it, firewall, links);
}

std::vector<std::string> Publisher::differences(const std::optional<std::string>& id) {
    if (id) validate_id(*id);
    auto lock = store_.lock_shared();
    const auto existing = load_records();
    NftFirewall firewall(owner());
    Links links;
    std::vector<std::string> out;
    for (const auto& u : unusable_)
        out.push_back(u.advice());
    store_.load_host();
    if (store_.host_problem()) out.push_back(*store_.host_problem());
    bool found = false;
    for (const auto& p : existing) {
        if (id && p.id != *id) continue;
        found = true;
        if (p.phase != Publication::Phase::published) {
            out.push_back(p.id + ": " + interrupted(p) + " (portpub gc removes it)");
            continue;
        }
        for (const auto& m : missing_of(p, firewall, links))
            out.push_back(p.id + ": " + m);
    }
    if (id && !found) throw Error("nothing is published as " + *id + "; portpub ls lists what is");
    if (!existing.empty())
        for (const auto& d : firewall.base_differences())
            out.push_back(d);
    if (id) return out;
    // What no record accounts for may be an unusable record's.
    if (!unusable_.empty()) {
        out.push_back("what no record accounts for is not looked for while a record is unusable");
        return out;
    }
    // Whole-table checks: what no record accounts for.
    if (existing.empty() && firewall.table_exists())
        out.push_back("table inet " + std::string(kTableName) +
                      " exists, but no record needs it (portpub gc removes it)");
    for (const auto& e : stray_elements(firewall, existing))
        out.push_back("map element " + describe(e) + " is in no record (portpub gc removes it)");
    for (const auto& f : stray_proxies(owner(), existing))
        out.push_back("proxy pid " + std::to_string(f.process.pid) + " of " + f.id +
                      " runs, but no record names it (portpub gc stops it)");
    return out;
}

std::vector<Publication> Publisher::finish_interrupted(std::vector<Publication>& existing,
                                                       HostState& host) {
    std::vector<Publication> finished;
    for (std::size_t i = 0; i < existing.size();) {
        if (existing[i].phase == Publication::Phase::published) {
            ++i;
            continue;
        }
        finished.push_back(existing[i]);
        existing.erase(existing.begin() + static_cast<long>(i));
        teardown(finished.back(), existing, host);
    }
    return finished;
}

std::vector<std::string> Publisher::gc() {
    require_capabilities();
    auto lock = store_.lock();
    auto existing = load_records();
    HostState host = store_.load_host();
    std::vector<std::string> report;
    for (const auto& u : unusable_)
        report.push_back("left alone: " + u.advice());
    if (store_.host_problem()) report.push_back("left alone: " + *store_.host_problem());
    for (const auto& p : finish_interrupted(existing, host))
        report.push_back("removed " + p.id + ": " + interrupted(p));

    NftFirewall firewall(owner());
    firewall.check_owner();
    Links links;
    for (std::size_t i = 0; i < existing.size();) {
        if (namespace_alive(existing[i])) {
            ++i;
            continue;
        }
        const Publication p = existing[i];
        existing.erase(existing.begin() + static_cast<long>(i));
        std::vector<std::string> parts{"record"};
        if (!p.host_veth.empty() && links.link_exists(p.host_veth))
            parts.push_back("veth " + p.host_veth);
        if (firewall.table_exists()) {
            const auto held = firewall.in_kernel(nat_elements(p));
            if (auto n = std::count(held.begin(), held.end(), true); n > 0)
                parts.push_back(std::to_string(n) + (n == 1 ? " map element" : " map elements"));
        }
        if (p.proxy && process_running({p.proxy->pid, p.proxy->start_time}))
            parts.push_back("proxy pid " + std::to_string(p.proxy->pid));
        parts.push_back("address " + p.address.str());
        std::string what;
        for (const auto& part : parts)
            what += (what.empty() ? "" : ", ") + part;
        teardown(p, existing, host);
        report.push_back("removed " + p.id + ": namespace " + p.netns + " is gone (" + what + ")");
    }

    // What no record accounts for: left by a hand-edited state directory, or
    // by a portpub before records were written ahead of changes. Not while a
    // record is unusable: it may be that record's.
    if (!unusable_.empty()) {
        report.push_back(
            "left alone: proxies, map elements, veths and the host's settings that no record "
            "accounts for, while a record is unusable");
        return report;
    }
    for (const auto& f : stray_proxies(owner(), existing)) {
        stop_process(f.process);
        if (std::none_of(existing.begin(), existing.end(),
                         [&](const Publication& p) { return p.id == f.id; }))
            remove_log(log_path(store_.dir(), f.id));
        report.push_back("stopped proxy pid " + std::to_string(f.process.pid) + " of " + f.id +
                         ": no record names it");
    }
    if (firewall.table_exists()) {
        FirewallChange change;
        if (existing.empty()) {
            change.drop_table = true;
            report.push_back("removed table inet " + std::string(kTableName) +
                             ": no record needs it");
        } else {
            change.del = stray_elements(firewall, existing);
            for (const auto& e : change.del)
                report.push_back("removed map element " + describe(e) + ": no record holds it");
        }
        firewall.apply(change);
    }
    std::set<std::string> bridges;
    for (const auto& [name, owned] : host.bridges)
        bridges.insert(name);
    for (const auto& p : existing)
        if (!p.host_veth.empty()) bridges.insert(p.network.bridge);
    for (const auto& bridge : bridges)
        for (const auto& port : links.ports_of(bridge)) {
            if (!is_host_veth_name(port) || links.link_type(port) != "veth") continue;
            if (std::any_of(existing.begin(), existing.end(),
                            [&](const Publication& p) { return p.host_veth == port; }))
                continue;
            links.delete_link(port);
            report.push_back("removed veth " + port + " on " + bridge + ": no record holds it");
        }
    if (existing.empty()) {
        // No record is left, so nothing needs what portpub changed on the
        // host: put it back as `down` of the last container does.
        for (const auto& [name, owned] : host.bridges) {
            if (owned.created && links.link_exists(name) && links.link_type(name) != "bridge") {
                report.push_back("left alone: interface " + name +
                                 " is not a bridge, though portpub made a bridge of that name");
            } else if (auto port = owned.created ? foreign_port(links, name) : std::nullopt) {
                report.push_back("left alone: bridge " + name + " has port " + shown(*port) +
                                 ", which portpub did not make");
            } else if (owned.created && links.link_exists(name)) {
                links.delete_link(name);
                report.push_back("removed bridge " + name + ": no record needs it");
            } else if (owned.brought_up && links.link_type(name) == "bridge") {
                links.set_link_down(name);
            }
        }
        host.bridges.clear();
        bool saved = true;
        for (const auto& done : put_forwarding_back(host, store_, existing, saved))
            report.push_back(done + ": no record needs it");
        store_.save_host(host);
    }
    return report;
}

std::vector<std::string> Publisher::restore_one(Publication& pub, HostState& host) {
    std::vector<std::string> done;
    NftFirewall firewall(owner());
    Links links;
    for (const auto& [setting, value] : enable_forwarding(host, store_, pub.address6.has_value()))
        done.push_back(setting->name);
    if (!pub.host_veth.empty()) {
        const auto would = links.bridge_changes(pub.network);
        // A bridge renamed by hand keeps the subnet's route: a second one
        // beside it would give the host two routes and serve neither.
        std::vector<Cidr> subnets{pub.network.subnet};
        if (pub.network.subnet6) subnets.push_back(*pub.network.subnet6);
        for (const auto& subnet : subnets)
            if (auto r =
                    would.created ? links.foreign_route(subnet, pub.network.bridge) : std::nullopt)
                throw Error("bridge " + pub.network.bridge + " is missing, and subnet " +
                            subnet.str() + " is on interface " + shown(r->dev) +
                            " (renamed by hand?): name it " + pub.network.bridge +
                            " again, or remove it, and run restore again");
        if (would.created || would.address_added || would.brought_up || would.address6_added) {
            make_bridge(pub.network, links, host, store_, nullptr);
            done.push_back("bridge " + pub.network.bridge);
        }
        auto ns = Netns::open(pub.netns);
        if (ns.inode() != pub.netns_inode)
            throw Error("namespace " + pub.netns + " is another one now; portpub gc removes " +
                        pub.id);
        if (!links.link_exists(pub.host_veth)) {
            // Its container end there, its host end under another name.
            if (auto peer = links.peer_name(pub, ns))
                throw Error("veth " + pub.host_veth + " is missing, and " + pub.ifname + " in " +
                            pub.netns + " is a veth whose host end is " + shown(*peer) +
                            " (renamed by hand?): name it " + pub.host_veth +
                            " again (ip link set " + shown(*peer) + " name " + pub.host_veth +
                            ") and run restore, or run portpub down and up");
            if (links.exists_in(ns, pub.ifname))
                throw Error("veth " + pub.host_veth + " is missing, and " + pub.ifname + " in " +
                            pub.netns +
                            " is an interface portpub did not make: remove it, or run portpub "
                            "down and up");
            links.create_container_link(pub, ns);
            done.push_back("veth " + pub.host_veth);
        } else {
            if (!links.on_bridge(pub.host_veth, pub.network.bridge)) {
                links.attach(pub.host_veth, pub.network.bridge);
                done.push_back("veth " + pub.host_veth + " on " + pub.network.bridge);
            }
            for (auto& d : links.repair_link(pub, ns))
                done.push_back(std::move(d));
        }
    }
    // A proxy that died: a new one, with new listeners, and the redirects
    // pointed at them below.
    std::optional<ProxyFds> proxy_fds;
    if (pub.proxy && !process_running({pub.proxy->pid, pub.proxy->start_time})) {
        proxy_fds = open_proxy_sockets(pub);
        pub.proxy->listen4 = proxy_fds->port4;
        pub.proxy->listen6 = proxy_fds->port6;
        pub.proxy->ipv6 = proxy_fds->ipv6;
    }
    // The table, chains and sets as `up` makes them (adding a set element
    // that is there changes nothing); map elements below, only the missing.
    FirewallChange change = change_for_up(pub);
    change.add.clear();
    const bool table = firewall.table_exists();
    if (!table)
        done.push_back("table inet " + std::string(kTableName));
    else if (!firewall.base_differences().empty())
        done.push_back("chains");
    else if (!firewall.network_present(pub.network, !pub.host_veth.empty()))
        done.push_back("sets");
    std::map<NatMap, std::map<std::vector<std::uint8_t>, NatElement>> held;
    if (table)
        for (NatMap map : kNatMaps)
            for (const auto& e : firewall.elements(map))
                held[map][e.key_bytes()] = e;
    for (const auto& want : nat_elements(pub)) {
        auto it = held[want.map].find(want.key_bytes());
        if (it != held[want.map].end() &&
            std::equal(want.data.begin(), want.data.begin() + want.data_len,
                       it->second.data.begin(), it->second.data.begin() + it->second.data_len))
            continue;
        if (it != held[want.map].end()) change.del.push_back(it->second);  // a dead proxy's port
        change.add.push_back(want);
    }
    if (!change.add.empty())
        done.push_back(std::to_string(change.add.size()) +
                       (change.add.size() == 1 ? " map element" : " map elements"));
    firewall.apply(change);
    // Datagrams that came while the rules were missing left entries that
    // would keep their flows away from the container.
    if (!change.add.empty())
        if (auto note = try_flush_udp_conntrack(pub.mappings))
            std::cerr << "portpub: " << *note << "\n";
    if (proxy_fds) {
        auto started = start_proxy(pub, *proxy_fds, owner());
        pub.proxy->pid = started.pid;
        pub.proxy->start_time = started.start_time;
        store_.save(pub);
        done.push_back("proxy (pid " + std::to_string(started.pid) + ")");
    }
    return done;
}

Publisher::Restored Publisher::restore() {
    require_capabilities();
    auto lock = store_.lock();
    auto existing = load_records();
    HostState host = store_.load_host();
    Restored result;
    for (const auto& u : unusable_)
        result.failed.push_back(u.advice());
    // Restoring makes bridges and turns forwarding on: what it would not
    // write down, it does not do.
    if (store_.host_problem()) {
        result.failed.push_back(*store_.host_problem());
        return result;
    }
    for (const auto& p : finish_interrupted(existing, host))
        result.done.push_back("removed " + p.id + ": " + interrupted(p));
    NftFirewall(owner()).check_owner();
    for (auto& p : existing) {
        if (!namespace_alive(p)) {
            result.failed.push_back(p.id + ": namespace " + p.netns +
                                    " is gone; portpub gc removes its record");
            continue;
        }
        try {
            const auto done = restore_one(p, host);
            std::string what;
            for (const auto& d : done)
                what += (what.empty() ? "" : ", ") + d;
            if (!what.empty()) result.done.push_back("restored " + p.id + ": " + what);
        } catch (const Error& e) {
            result.failed.push_back(p.id + ": " + e.what());
        }
    }
    return result;
}

void Publisher::write_or_note(const std::function<void()>& write, const std::string& otherwise) {
    try {
        write();
    } catch (const Error& e) {
        notes_.push_back(std::string(e.what()) + ": " + otherwise);
    }
}

void Publisher::teardown(const Publication& pub, const std::vector<Publication>& remaining,
                         HostState& host) {
    if (pub.phase != Publication::Phase::removing) {
        auto marked = pub;
        marked.phase = Publication::Phase::removing;
        write_or_note([&] { store_.save(marked); }, "the record of " + pub.id +
                                                        " was not marked as being removed, so "
                                                        "a down killed now leaves it whole");
    }
    crash_point(Step::down_removing_saved);
    // The proxy first: its ports go with it, before the rules that lead to it.
    if (pub.proxy) {
        stop_process({pub.proxy->pid, pub.proxy->start_time});
        if (pub.proxy->pid == 0)  // an up died before it wrote the proxy's pid down
            for (const auto& found : find_proxies(owner()))
                if (found.id == pub.id) stop_process(found.process);
        remove_log(log_path(store_.dir(), pub.id));
    }
    crash_point(Step::down_proxy_stopped);
    NftFirewall firewall(owner());
    firewall.apply(change_for_down(pub, remaining, !unusable_.empty()));
    if (auto note = try_flush_udp_conntrack(pub.mappings))
        std::cerr << "portpub: " << *note << "\n";
    crash_point(Step::down_firewall);
    Links links;
    // Deleting the host end takes the peer, its address and route with it.
    if (!pub.host_veth.empty()) links.delete_link(pub.host_veth);
    crash_point(Step::down_veth);

    // Host state saves that fail (a full disk) do not stop the teardown.
    auto saved = [](const std::function<void()>& save) {
        try {
            save();
            return true;
        } catch (const Error&) {
            return false;
        }
    };
    bool host_saved = true;
    // An unusable record may be a container on this bridge.
    const bool bridge_in_use =
        !unusable_.empty() ||
        std::any_of(remaining.begin(), remaining.end(),
                    [&](const Publication& r) { return r.network.bridge == pub.network.bridge; });
    if (auto it = host.bridges.find(pub.network.bridge);
        !bridge_in_use && it != host.bridges.end()) {
        // Put a bridge that portpub did not create back as it was.
        if (it->second.created) {
            const Cidr gateway{pub.network.gateway, pub.network.subnet.prefix};
            if (!links.link_exists(pub.network.bridge))
                if (auto holder = links.holder_of(gateway))
                    notes_.push_back("bridge " + pub.network.bridge + " is gone, and interface " +
                                     shown(*holder) + " has its address " + gateway.str() +
                                     " (renamed by hand?): portpub leaves it alone; remove it "
                                     "with ip link del " +
                                     shown(*holder));
            if (links.link_exists(pub.network.bridge) &&
                links.link_type(pub.network.bridge) != "bridge")
                notes_.push_back("interface " + pub.network.bridge +
                                 " is not a bridge: portpub made a bridge of that name, and "
                                 "leaves this one alone");
            else if (auto port = foreign_port(links, pub.network.bridge))
                notes_.push_back("bridge " + pub.network.bridge + " has port " + shown(*port) +
                                 ", which portpub did not make: it is left as it is");
            else
                links.delete_link(pub.network.bridge);
        } else if (links.link_type(pub.network.bridge) == "bridge") {  // else: not the one
            if (it->second.address_added)
                links.remove_address(pub.network.bridge,
                                     {pub.network.gateway, pub.network.subnet.prefix});
            if (it->second.address6_added && pub.network.subnet6)
                links.remove_address(pub.network.bridge,
                                     {pub.network.gateway6, pub.network.subnet6->prefix});
            if (it->second.brought_up) links.set_link_down(pub.network.bridge);
        }
        host.bridges.erase(it);
        host_saved = saved([&] { store_.save_host(host); });
    }
    crash_point(Step::down_bridge);
    if (unusable_.empty()) put_forwarding_back(host, store_, remaining, host_saved);
    // Once more, if a save above failed: the state may be empty by now, and
    // an empty one is an unlink, which a full disk allows.
    if (!host_saved)
        write_or_note([&] { store_.save_host(host); },
                      "the host state still names what this down put back");
    crash_point(Step::down_ip_forward);
    store_.remove(pub.id);
    crash_point(Step::down_record_removed);
}

}  // namespace portpub
