// The publisher's up and down under the state directory's lock, on a Host
// of narrow interfaces (the kernel's, or the fakes of publisher_test.cpp);
// check, gc and restore are in publisher_repair.cpp.
//
// A record is written before the changes it describes: `up` saves it as pending, `down` marks
// it removing (when the disk lets it), and what `up` changes on the host itself goes to host.json
// first. A portpub killed at any step thus leaves a record of all it may have made, and the next
// command, or gc, finishes the job by taking it apart. `up` plans, then makes every check that
// changes nothing, then applies: forwarding, bridge, veth, the proxy's sockets, the nftables batch,
// the proxy, the record marked published. Each step adds its undo to a Rollback; when a later
// step fails, the undos run newest first, and those that fail join the error. Teardown goes
// the other way: the proxy (its ports go before the rules that lead to it), the rules, the
// veth, the bridge and forwarding (when nothing else needs them), the record last. While a
// record cannot be read, nothing shared is taken down and nothing unrecorded is removed.
#include "portpub/publisher.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "host_steps.hpp"
#include "portpub/crash_points.hpp"
#include "portpub/error.hpp"
#include "portpub/firewall_change.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/forward_state.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/nat_elements.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/watcher_process.hpp"

namespace portpub {

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
        // Rewritten, loopback is served without the proxy; IPv6 clients of
        // an IPv4-only container from elsewhere are not.
        unserved =
            unserved ||
            (!req.proxy && (pub.rewrite ? !pub.address6 && proxy_serves_v6(pub, m)
                                        : proxy_serves_loopback4(m) || proxy_serves_v6(pub, m)));
        sctp = sctp || m.proto == Proto::sctp;
        udp_unserved = udp_unserved ||
                       (req.proxy && req.runtime_holds_ports && m.proto == Proto::udp &&
                        !pub.rewrite && (proxy_serves_loopback4(m) || proxy_serves_v6(pub, m)));
    }
    if (udp_unserved)
        notes_.push_back(
            "the runtime holds the published ports: UDP to 127.0.0.1, ::1 and from "
            "IPv6 clients is not served for " +
            pub.id);
    if (unserved)
        notes_.push_back((pub.rewrite ? std::string("--no-proxy: connections from IPv6 clients "
                                                    "of other hosts are not served for ")
                                      : std::string("--no-proxy: connections to 127.0.0.1, ::1 "
                                                    "and from IPv6 clients are not served for ")) +
                         pub.id);
    if (sctp && !host_.probe.has_sctp())
        notes_.push_back(
            "SCTP mappings get kernel NAT only, and this kernel has no SCTP: SCTP on "
            "127.0.0.1 and ::1 is not served");
}

namespace {

// The bridges of `pub` and of the publications beside it, each once.
std::vector<std::string> bridges_of(const Publication& pub,
                                    const std::vector<Publication>& others) {
    std::vector<std::string> bridges{pub.network.bridge};
    for (const auto& o : others)
        if (std::find(bridges.begin(), bridges.end(), o.network.bridge) == bridges.end())
            bridges.push_back(o.network.bridge);
    return bridges;
}

// The state directory as the table's owner: absolute, symlinks resolved.
std::string owner_of(const std::filesystem::path& dir) {
    std::error_code ec;
    auto path = std::filesystem::weakly_canonical(std::filesystem::absolute(dir, ec), ec);
    return ec ? dir.string() : path.string();
}

}  // namespace

Publisher::Publisher(std::filesystem::path state_dir)
    : store_(state_dir),
      kernel_(std::make_unique<KernelHost>(owner_of(state_dir), state_dir)),
      host_(kernel_->host()) {}

Publisher::Publisher(std::filesystem::path state_dir, const Host& host)
    : store_(std::move(state_dir)), host_(host) {}

Publication Publisher::up(const UpRequest& req) {
    validate_request(req);  // bad input first: it is the most likely mistake
    notes_.clear();
    host_.probe.require_capabilities();
    auto ns = host_.namespaces.open(req.netns);
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
    auto facts = host_.probe.port_facts();
    add_forward_holds(facts, store_);  // a host port `portpub forward` holds is taken
    // An `up` again for the same id replaces that publication: the ports its
    // proxy holds are about to be released, so they do not count as in use.
    // Not when it is dead: whoever holds them now keeps them.
    const std::string id = publication_id(req, identity);
    if (auto old = std::find_if(existing.begin(), existing.end(),
                                [&](const Publication& p) { return p.id == id; });
        old != existing.end() && old->proxy &&
        host_.proxies.running({old->proxy->pid, old->proxy->start_time})) {
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
    for (const auto& name : host_.links.host_veths())
        if (auto a = host_veth_address(name); a && held_by_other(*a))
            unrecorded.addresses.insert(*a);
    // An unreadable record's container may have no veth now (its namespace
    // went), and its ports still lead to its address.
    if (unrecorded.records_incomplete)
        if (host_.tables.table_exists())
            for (NatMap map : {NatMap::wildcard4, NatMap::bound4})
                for (const auto& e : host_.tables.elements(map))
                    if (auto a = dnat_target(e); a && held_by_other(*a))
                        unrecorded.addresses.insert(*a);
    Plan plan = plan_up(
        req, identity, existing, facts,
        [this](const Publication& p) { return host_.namespaces.alive(p); }, unrecorded);
    const Publication& pub = plan.publication;
    add_notes(req, pub);
    auto others = without(existing, pub.id);
    // Everything that can refuse without changing anything comes first, and
    // before a publication this one replaces is touched.
    auto seen = preflight(pub, ns, plan.replaces ? &*plan.replaces : nullptr, others, host);
    if (plan.replaces) {
        // Same id again: a full `down` of the old publication, then an `up`
        // of the new one, whose own rollback leaves nothing if it fails.
        teardown(*plan.replaces, others, host);
        // The teardown may have taken the bridge's accepts and zone with it.
        seen = host_.foreign.read(bridges_of(pub, others));
        try {
            return watched(apply(pub, others, ns, host, seen, req.cgroup), req);
        } catch (const Error& e) {
            throw Error("up " + pub.id + ": " + e.what() + " (the earlier publication of " +
                        pub.id + " was removed; run up again once the problem is fixed)");
        }
    }
    try {
        return watched(apply(pub, others, ns, host, seen, req.cgroup), req);
    } catch (const Error& e) {
        throw Error("up " + pub.id + ": " + e.what());
    }
}

Publication Publisher::watched(Publication pub, const UpRequest& req) {
    // Under the state lock: a watcher deciding that nothing is left to
    // watch decides under it too, so this publication is never unwatched.
    if (req.watch)
        if (auto why = host_.watchers.start())
            notes_.push_back("no watcher runs (" + *why +
                             "): after a flush or a firewall reload, run portpub restore");
    return pub;
}

void Publisher::settle_watcher_if_idle() {
    portpub::settle_watcher_if_idle(store_, [this] { host_.watchers.settle(); });
}

namespace {

// What portpub will not let through itself, and what to run instead.
std::vector<std::string> foreign_notes(const Publication& pub, const ForeignFirewalls& seen,
                                       bool portpub_passes) {
    std::vector<std::string> notes;
    for (const auto& d : foreign_drops(seen, pub.network)) {
        if (portpub_passes && d.remedy != ForeignDrop::Remedy::by_hand) continue;
        std::string note = portpub_passes ? d.what : "--firewall none: " + d.what;
        if (!d.commands.empty()) note += "; to let it through, run: " + commands_text({d});
        notes.push_back(std::move(note));
    }
    return notes;
}

}  // namespace

ForeignFirewalls Publisher::preflight(const Publication& pub, const Netns& ns,
                                      const Publication* replaced,
                                      const std::vector<Publication>& others,
                                      const HostState& host) {
    // A kernel without nftables, a table of another state directory.
    host_.tables.check_owner();
    // portpub lets the traffic of the bridges it makes or uses through; a
    // network another CNI plugin made is that plugin's (or CNI's firewall
    // plugin's) to let through.
    const bool passes = pub.pass_firewalls && !pub.host_veth.empty();
    ForeignFirewalls seen;
    try {
        seen = host_.foreign.read(bridges_of(pub, others));
    } catch (const Error& e) {
        // Left alone, they need not be read: a note, not a failure.
        if (passes) throw Error(std::string("reading the firewalls beside portpub: ") + e.what());
        notes_.push_back(std::string("cannot read the firewalls beside portpub: ") + e.what());
    }
    if (passes && seen.firewalld.strict_forward_ports)
        throw Error(
            "firewalld runs with StrictForwardPorts=yes, which rejects traffic to published "
            "ports that firewalld did not forward itself: set StrictForwardPorts=no in "
            "/etc/firewalld/firewalld.conf and reload firewalld, or forward the ports with "
            "firewalld (then --firewall none)");
    for (auto& note : foreign_notes(pub, seen, passes))
        notes_.push_back(std::move(note));
    // A container attached by another CNI plugin: its subnet is on that
    // plugin's bridge, and the links are that plugin's to make.
    if (pub.host_veth.empty()) return seen;
    Links& links = host_.links;
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
    return seen;
}

Publication Publisher::apply(Publication pub, const std::vector<Publication>& others,
                             const Netns& ns, HostState& host, const ForeignFirewalls& seen,
                             const std::string& cgroup) {
    Links& links = host_.links;
    FirewallCommand& firewall = host_.firewall;
    const bool own_links = !pub.host_veth.empty();

    // The record comes before the changes it describes: whatever happens to
    // this process from here on, the next portpub finds what to take apart.
    pub.phase = Publication::Phase::pending;
    store_.save(pub);
    Rollback rollback;
    rollback.add([this, id = pub.id, host_before = host] {
        store_.save_host(host_before);
        store_.remove(id);
    });
    crash_point(Step::up_pending_saved);
    try {
        step("ip_forward", [&] {
            for (const auto& [setting, value] : turn_ip_forwarding_on(
                     host_.sysctls, host_.links, host, store_, pub.address6.has_value()))
                rollback.add(
                    [this, key = setting->key, value] { host_.sysctls.write(key, value); });
        });
        crash_point(Step::up_ip_forward);

        if (own_links) {
            step("bridge " + pub.network.bridge,
                 [&] { make_bridge(pub.network, links, host, store_, &rollback); });
            crash_point(Step::up_bridge);
            if (pub.pass_firewalls)
                step("firewalls beside portpub", [&] {
                    pass_foreign_firewalls(pub.network, seen, host_.foreign, host, store_,
                                           &rollback);
                });
            crash_point(Step::up_foreign_firewalls);
            step("veth " + pub.host_veth, [&] {
                // Planned free; one that appeared since is not this up's to delete.
                if (links.link_exists(pub.host_veth))
                    throw Error("the interface appeared while up ran; run up again");
                rollback.add([&links, name = pub.host_veth] { links.delete_link(name); });
                links.create_container_link(pub, ns);
            });
            crash_point(Step::up_veth);
        }

        // What a firewall reload took of the others' passes goes back too.
        std::set<std::string> passed{pub.network.bridge};
        for (const auto& o : others)
            if (o.pass_firewalls && !o.host_veth.empty() &&
                o.phase == Publication::Phase::published &&
                host.bridges.contains(o.network.bridge) && passed.insert(o.network.bridge).second)
                step("firewalls beside portpub for bridge " + o.network.bridge, [&] {
                    for (const auto& d : pass_foreign_firewalls(o.network, seen, host_.foreign,
                                                                host, store_, nullptr))
                        notes_.push_back("put back " + d + " of bridge " + o.network.bridge);
                });

        // The proxy's sockets come before the rules: the redirects name its
        // listeners' ports, and a port in use must fail before anything points at it.
        std::optional<ProxyFds> proxy_fds;
        if (pub.proxy)
            step("proxy sockets", [&] {
                proxy_fds = host_.proxies.open_sockets(pub);
                pub.proxy->listen4 = proxy_fds->port4;
                pub.proxy->listen6 = proxy_fds->port6;
                pub.proxy->ipv6 = proxy_fds->ipv6;
                store_.save(pub);  // the redirects' keys, for a teardown after a crash
            });

        step("table inet " + std::string(kTableName), [&] {
            auto change = change_for_up(pub);
            // A flush, or a chain or map deleted by hand, took the others'
            // parts too: they go back in the same batch (their elements, or
            // they would fall to the proxy and lose their clients' addresses).
            FirewallView& tables = host_.tables;
            if (!others.empty()) {
                const bool table = tables.table_exists();
                if (!table || !tables.base_differences().empty()) {
                    const auto healed = add_missing_neighbours(
                        change, others, [&](const std::vector<NatElement>& elements) {
                            return table ? tables.in_kernel(elements)
                                         : std::vector<bool>(elements.size(), false);
                        });
                    if (healed)
                        notes_.push_back(
                            "table inet " + std::string(kTableName) +
                            (table ? " had lost chains" : " was gone") +
                            ": put back the parts of " + std::to_string(healed) +
                            (healed == 1 ? " other publication" : " other publications"));
                }
            }
            firewall.apply(change);
            rollback.add([&firewall, pub, others, shared = !unusable_.empty()] {
                firewall.apply(change_for_down(pub, others, shared));
            });
        });
        if (auto note = host_.conntrack.flush_udp(pub.mappings)) notes_.push_back(*note);
        crash_point(Step::up_firewall);

        // Loopback rewritten in the kernel; where it cannot be, the proxy
        // (and the redirects to it, in place already) serve it.
        if (pub.rewrite)
            step("loopback rewriting", [&] {
                const bool was_attached = host_.rewriter.attached();
                if (auto why = attach_rewriter(cgroup, host_.rewriter, host, store_, &rollback)) {
                    pub.rewrite = false;
                    store_.save(pub);
                    notes_.push_back(
                        "the kernel cannot rewrite connections to loopback here (" + *why + "): " +
                        (!pub.proxy
                             ? "127.0.0.1 and ::1 are not served for " + pub.id + " (--no-proxy)"
                         : pub.proxy->runtime_holds_ports
                             ? "the proxy serves TCP to 127.0.0.1 and ::1 for " + pub.id +
                                   " (not UDP: the runtime holds the ports)"
                             : "the proxy serves 127.0.0.1 and ::1 for " + pub.id));
                    return;
                }
                // Attached anew (their pins were gone): the others' entries
                // went with the old map.
                if (!was_attached) {
                    std::vector<RewriteEntry> theirs;  // one change of the map for all
                    for (const auto& o : others)
                        if (o.rewrite && o.phase == Publication::Phase::published)
                            for (auto& e : rewrite_entries(o))
                                theirs.push_back(std::move(e));
                    if (!theirs.empty()) host_.rewriter.add(theirs);
                }
                const auto entries = rewrite_entries(pub);
                rollback.add([this, entries] { host_.rewriter.remove(entries); });
                host_.rewriter.add(entries);
            });
        crash_point(Step::up_rewrite);

        if (pub.proxy)
            step("proxy", [&] {
                auto started = host_.proxies.start(pub, *proxy_fds);
                proxy_fds.reset();  // the proxy holds them now
                pub.proxy->pid = started.pid;
                pub.proxy->start_time = started.start_time;
                rollback.add([this, started, id = pub.id] {
                    host_.proxies.stop(started);
                    host_.proxies.remove_log(id);
                });
            });
        crash_point(Step::up_proxy_started);

        pub.phase = Publication::Phase::published;
        store_.save(pub);
    } catch (const std::exception& e) {
        std::string message = e.what();
        const auto failed = rollback.run();
        for (std::size_t i = 0; i < failed.size(); ++i)
            message += (i == 0 ? "; undoing it failed too: " : "; ") + failed[i];
        throw Error(message);
    }
    crash_point(Step::up_published);
    return pub;
}

namespace {

const Publication* find_target(const std::vector<Publication>& records, const DownRequest& req,
                               Namespaces& namespaces) {
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
                auto ns = namespaces.open(*req.netns);
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
    auto removed = down_locked(req);
    settle_watcher_if_idle();
    return removed;
}

std::optional<Publication> Publisher::down_locked(const DownRequest& req) {
    if (req.id) validate_id(*req.id);
    if (req.netns) validate_netns_path(*req.netns);
    host_.probe.require_capabilities();
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
    if (const auto* done = find_target(finished, req, host_.namespaces)) return *done;
    const auto* target = find_target(existing, req, host_.namespaces);
    if (!target) return std::nullopt;
    if (req.only_if)
        if (auto why = req.only_if(*target)) {
            notes_.push_back(*why);
            return std::nullopt;
        }
    const Publication pub = *target;
    try {
        teardown(pub, without(existing, pub.id), host);
    } catch (const Error& e) {
        throw Error("down " + pub.id + ": " + e.what());
    }
    return pub;
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
        try {
            teardown(finished.back(), existing, host);
        } catch (const Error& e) {
            const auto& p = finished.back();
            throw Error(std::string("finishing the interrupted ") +
                        (p.phase == Publication::Phase::pending ? "up" : "down") + " of " + p.id +
                        ": " + e.what());
        }
    }
    return finished;
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
    // Loopback rewriting first: a client then reaches the proxy, while it runs.
    if (pub.rewrite)
        step("loopback rewriting", [&] { host_.rewriter.remove(rewrite_entries(pub)); });
    crash_point(Step::down_rewrite);
    // The proxy next: its ports go with it, before the rules that lead to it.
    if (pub.proxy)
        step("proxy", [&] {
            host_.proxies.stop({pub.proxy->pid, pub.proxy->start_time});
            // An up, or a repair, killed before it wrote the new proxy's pid
            // down left one the record does not name.
            for (const auto& found : host_.proxies.find())
                if (found.id == pub.id) host_.proxies.stop(found.process);
            host_.proxies.remove_log(pub.id);
        });
    crash_point(Step::down_proxy_stopped);
    step("table inet " + std::string(kTableName),
         [&] { host_.firewall.apply(change_for_down(pub, remaining, !unusable_.empty())); });
    if (auto note = host_.conntrack.flush_udp(pub.mappings)) notes_.push_back(*note);
    crash_point(Step::down_firewall);
    Links& links = host_.links;
    // Deleting the host end takes the peer, its address and route with it.
    if (!pub.host_veth.empty())
        step("veth " + pub.host_veth, [&] { links.delete_link(pub.host_veth); });
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
    if (!bridge_in_use && host.bridges.contains(pub.network.bridge)) {
        step("firewalls beside portpub",
             [&] { withdraw_foreign_firewalls(pub.network.bridge, host_.foreign, host); });
        host_saved = saved([&] { store_.save_host(host); });
    }
    crash_point(Step::down_foreign_firewalls);
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
    if (host.rewrite_cgroup)
        step("socket programs", [&] {
            if (detach_rewriter_if_unused(host_.rewriter, host, remaining, !unusable_.empty()))
                host_saved = saved([&] { store_.save_host(host); }) && host_saved;
        });
    if (unusable_.empty())
        put_ip_forwarding_back(host_.sysctls, host_.links, host, store_, remaining, host_saved,
                               notes_);
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
