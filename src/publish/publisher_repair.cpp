// The repairs of the publisher: what CNI CHECK and `portpub check` find
// missing or stray, `gc` (records of namespaces that are gone, interrupted
// commands, what no record accounts for) and `restore` (what the records say
// and the kernel lacks), on the same Host as up and down.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "host_steps.hpp"
#include "portpub/crash_points.hpp"
#include "portpub/error.hpp"
#include "portpub/firewall_change.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/naming.hpp"
#include "portpub/nat_elements.hpp"
#include "portpub/publisher.hpp"

namespace portpub {

namespace {

// The service map's entries, read once for a command that looks at every
// publication (the map holds every publication's).
class HeldRewrites {
  public:
    explicit HeldRewrites(Rewriter& rewriter) : rewriter_(rewriter) {}
    const std::vector<RewriteEntry>& get() {
        if (!held_) held_ = rewriter_.entries();
        return *held_;
    }

  private:
    Rewriter& rewriter_;
    std::optional<std::vector<RewriteEntry>> held_;
};

// What of `pub` the kernel lacks, one phrase each.
std::vector<std::string> missing_of(const Publication& pub, Host& host_, HeldRewrites& rewrites) {
    Links& links = host_.links;
    FirewallView& firewall = host_.tables;
    std::vector<std::string> missing;
    const bool alive = host_.namespaces.alive(pub);
    if (!alive) missing.push_back("namespace " + pub.netns + " is gone");
    for (const ForwardingSysctl* f : {&kForward4, &kForward6})
        if (f == &kForward4 || pub.address6)
            if (auto value = host_.sysctls.read(f->key); value && *value != "1")
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
        if (alive) ns = host_.namespaces.open(pub.netns);
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
    if (pub.proxy && !host_.proxies.running({pub.proxy->pid, pub.proxy->start_time}))
        missing.push_back("proxy (pid " + std::to_string(pub.proxy->pid) + ") is not running");
    if (pub.rewrite) {
        for (const auto& m : host_.rewriter.missing())
            missing.push_back("socket program " + m + " is not pinned");
        for (const auto& gone : uncovered(rewrite_entries(pub), rewrites.get(), true))
            missing.push_back("loopback rewrite " + describe(gone) + " is missing");
    }
    return missing;
}

// Ports the service map rewrites that no record accounts for (one whose
// record wants it elsewhere is that record's missing rewrite: restore mends it).
std::vector<RewriteEntry> stray_rewrites(HeldRewrites& rewrites,
                                         const std::vector<Publication>& records) {
    std::vector<RewriteEntry> wanted;
    for (const auto& p : records)
        if (p.rewrite)
            for (auto& e : rewrite_entries(p))
                wanted.push_back(std::move(e));
    return uncovered(rewrites.get(), wanted, false);
}

// Elements of the table that no record accounts for.
std::vector<NatElement> stray_elements(FirewallView& firewall,
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
std::vector<FoundProxy> stray_proxies(Proxies& proxies, const std::vector<Publication>& records) {
    std::vector<FoundProxy> stray;
    for (const auto& found : proxies.find()) {
        const bool recorded =
            std::any_of(records.begin(), records.end(), [&](const Publication& p) {
                return p.id == found.id && p.proxy && p.proxy->pid == found.process.pid &&
                       p.proxy->start_time == found.process.start_time;
            });
        if (!recorded) stray.push_back(found);
    }
    return stray;
}

// What the firewalls beside portpub drop of the records' traffic, and the
// accepts or zone portpub added that are gone: a line each, with its bridge.
std::vector<std::pair<std::string, std::string>> foreign_differences(
    const std::vector<Publication>& records, const HostState& host, Host& host_) {
    std::map<std::string, const Publication*> bridges;  // one publication a bridge
    std::set<std::string> passed;                       // bridges portpub lets through
    for (const auto& p : records) {
        if (p.phase != Publication::Phase::published) continue;
        bridges.try_emplace(p.network.bridge, &p);
        if (p.pass_firewalls && !p.host_veth.empty()) passed.insert(p.network.bridge);
    }
    if (bridges.empty()) return {};
    std::vector<std::string> names;
    for (const auto& [name, p] : bridges)
        names.push_back(name);
    const auto seen = host_.foreign.read(names);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, p] : bridges) {
        const bool ours = passed.contains(name);
        bool dropped[2] = {false, false};
        for (const auto& d : foreign_drops(seen, p->network)) {
            if (d.remedy == ForeignDrop::Remedy::iptables_accepts) dropped[d.ipv6_only] = true;
            if (ours && d.remedy != ForeignDrop::Remedy::by_hand)
                out.emplace_back(name, d.what + " (portpub restore lets it through)");
            else
                out.emplace_back(
                    name, d.what +
                              (ours || p->host_veth.empty() ? std::string()
                                                            : " (published with --firewall none)") +
                              "; to let it through, run: " + commands_text({d}));
        }
        const auto owned = host.bridges.find(name);
        if (owned == host.bridges.end()) continue;
        for (const bool v6 : {false, true})
            if ((v6 ? owned->second.ip6tables_accepts : owned->second.iptables_accepts) &&
                !dropped[v6] && !has_iptables_accepts(seen, v6, name))
                out.emplace_back(name, std::string("portpub's accepts for bridge ") + name +
                                           " are missing from " +
                                           (v6 ? "ip6tables'" : "iptables'") +
                                           " FORWARD chain (portpub restore puts them back)");
    }
    return out;
}

}  // namespace

std::optional<std::vector<std::string>> Publisher::missing_parts(const std::string& id) {
    validate_id(id);
    auto lock = store_.lock_shared();
    const auto existing = load_records();
    auto it = std::find_if(existing.begin(), existing.end(),
                           [&](const Publication& p) { return p.id == id; });
    if (it == existing.end()) return std::nullopt;
    if (it->phase != Publication::Phase::published)
        return std::vector<std::string>{interrupted(*it) + " (portpub gc removes it)"};
    HeldRewrites rewrites(host_.rewriter);
    return missing_of(*it, host_, rewrites);
}

std::vector<std::string> Publisher::differences_from_records(const std::optional<std::string>& id) {
    if (id) validate_id(*id);
    auto lock = store_.lock_shared();
    const auto existing = load_records();
    FirewallView& firewall = host_.tables;
    std::vector<std::string> out;
    for (const auto& u : unusable_)
        out.push_back(u.advice());
    const auto host = store_.load_host();
    if (store_.host_problem()) out.push_back(*store_.host_problem());
    bool found = false;
    HeldRewrites rewrites(host_.rewriter);
    for (const auto& p : existing) {
        if (id && p.id != *id) continue;
        found = true;
        if (p.phase != Publication::Phase::published) {
            out.push_back(p.id + ": " + interrupted(p) + " (portpub gc removes it)");
            continue;
        }
        for (const auto& m : missing_of(p, host_, rewrites))
            out.push_back(p.id + ": " + m);
    }
    if (id && !found) throw Error("nothing is published as " + *id + "; portpub ls lists what is");
    if (!existing.empty())
        for (const auto& d : firewall.base_differences())
            out.push_back(d);
    for (auto& [bridge, line] : foreign_differences(existing, host, host_))
        if (!id || std::any_of(existing.begin(), existing.end(), [&](const Publication& p) {
                return p.id == *id && p.network.bridge == bridge;
            }))
            out.push_back(std::move(line));
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
    for (const auto& f : stray_proxies(host_.proxies, existing))
        out.push_back("proxy pid " + std::to_string(f.process.pid) + " of " + f.id +
                      " runs, but no record names it (portpub gc stops it)");
    // The programs and their map, when this state directory's portpub
    // attached them (the host state says so).
    if (!host.rewrite_cgroup) return out;
    for (const auto& e : stray_rewrites(rewrites, existing))
        out.push_back("loopback rewrite " + describe(e) +
                      " is in no record (portpub gc removes it)");
    if (std::none_of(existing.begin(), existing.end(),
                     [](const Publication& p) { return p.rewrite; }) &&
        host_.rewriter.attached())
        out.push_back(
            "the socket programs are attached, but no record needs them (portpub gc "
            "detaches them)");
    return out;
}

std::vector<std::string> Publisher::gc() {
    auto report = gc_locked();
    settle_watcher_if_idle();
    return report;
}

std::vector<std::string> Publisher::gc_locked() {
    notes_.clear();
    host_.probe.require_capabilities();
    auto lock = store_.lock();
    auto existing = load_records();
    HostState host = store_.load_host();
    std::vector<std::string> report;
    for (const auto& u : unusable_)
        report.push_back("left alone: " + u.advice());
    if (store_.host_problem()) report.push_back("left alone: " + *store_.host_problem());
    for (const auto& p : finish_interrupted(existing, host))
        report.push_back("removed " + p.id + ": " + interrupted(p));

    FirewallView& tables = host_.tables;
    tables.check_owner();
    Links& links = host_.links;
    for (std::size_t i = 0; i < existing.size();) {
        if (host_.namespaces.alive(existing[i])) {
            ++i;
            continue;
        }
        const Publication p = existing[i];
        existing.erase(existing.begin() + static_cast<long>(i));
        std::vector<std::string> parts{"record"};
        if (!p.host_veth.empty() && links.link_exists(p.host_veth))
            parts.push_back("veth " + p.host_veth);
        if (tables.table_exists()) {
            const auto held = tables.in_kernel(nat_elements(p));
            if (auto n = std::count(held.begin(), held.end(), true); n > 0)
                parts.push_back(std::to_string(n) + (n == 1 ? " map element" : " map elements"));
        }
        if (p.proxy && host_.proxies.running({p.proxy->pid, p.proxy->start_time}))
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
    for (const auto& f : stray_proxies(host_.proxies, existing)) {
        host_.proxies.stop(f.process);
        if (std::none_of(existing.begin(), existing.end(),
                         [&](const Publication& p) { return p.id == f.id; }))
            host_.proxies.remove_log(f.id);
        report.push_back("stopped proxy pid " + std::to_string(f.process.pid) + " of " + f.id +
                         ": no record names it");
    }
    if (tables.table_exists()) {
        FirewallChange change;
        if (existing.empty()) {
            change.drop_table = true;
            report.push_back("removed table inet " + std::string(kTableName) +
                             ": no record needs it");
        } else {
            change.del = stray_elements(tables, existing);
            for (const auto& e : change.del)
                report.push_back("removed map element " + describe(e) + ": no record holds it");
        }
        host_.firewall.apply(change);
    }
    if (host.rewrite_cgroup) {  // attached by this state directory's portpub
        HeldRewrites rewrites(host_.rewriter);
        if (const auto stray = stray_rewrites(rewrites, existing); !stray.empty()) {
            host_.rewriter.remove(stray);
            for (const auto& e : stray)
                report.push_back("removed loopback rewrite " + describe(e) +
                                 ": no record holds it");
        }
        if (detach_rewriter_if_unused(host_.rewriter, host, existing, false)) {
            store_.save_host(host);
            report.push_back("detached the socket programs: no record needs them");
        }
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
    // portpub's accepts in iptables' FORWARD that no bridge of the host state
    // accounts for (an iptables-restore of rules saved while they were there).
    for (const bool v6 : {false, true})
        for (const auto& bridge : host_.foreign.bridges_with_accepts(v6)) {
            const auto owned = host.bridges.find(bridge);
            if (owned != host.bridges.end() &&
                (v6 ? owned->second.ip6tables_accepts : owned->second.iptables_accepts))
                continue;
            host_.foreign.remove_iptables_accepts(v6, bridge);
            report.push_back(std::string("removed portpub's accepts for bridge ") + bridge +
                             " from " + (v6 ? "ip6tables'" : "iptables'") +
                             " FORWARD chain: no record needs them");
        }
    if (existing.empty()) {
        // No record is left, so nothing needs what portpub changed on the
        // host: put it back as `down` of the last container does.
        std::set<std::string> names;
        for (const auto& [name, owned] : host.bridges)
            names.insert(name);
        for (const auto& name : names)
            withdraw_foreign_firewalls(name, host_.foreign, host);
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
        std::vector<std::string> kept;
        for (const auto& done :
             put_ip_forwarding_back(host_.sysctls, links, host, store_, existing, saved, kept))
            report.push_back(done + ": no record needs it");
        for (auto& k : kept)
            report.push_back(std::move(k));
        store_.save_host(host);
    }
    return report;
}

namespace {

// `part` added to `into`: one batch for several publications (a network
// shared by two is added once).
void merge_change(FirewallChange& into, const FirewallChange& part) {
    into.ensure_base = into.ensure_base || part.ensure_base;
    for (const auto& [from, to] : {std::pair{&part.add_networks, &into.add_networks},
                                   std::pair{&part.add_isolated, &into.add_isolated}})
        for (const auto& n : *from)
            if (std::find(to->begin(), to->end(), n) == to->end()) to->push_back(n);
    into.add.insert(into.add.end(), part.add.begin(), part.add.end());
    into.del.insert(into.del.end(), part.del.begin(), part.del.end());
}

}  // namespace

std::vector<std::string> Publisher::restore_links(Publication& pub, HostState& host,
                                                  RestoreBatch& batch, FirewallChange& own,
                                                  std::optional<ProxyFds>& proxy_fds, bool& added) {
    std::vector<std::string> done;
    Links& links = host_.links;
    for (const auto& [setting, value] :
         turn_ip_forwarding_on(host_.sysctls, links, host, store_, pub.address6.has_value()))
        done.push_back(setting->name);
    if (!pub.host_veth.empty()) {
        const auto would = links.bridge_changes(pub.network);
        // A bridge renamed by hand keeps the subnet's route: a second one
        // beside it would give the host two routes and serve neither.
        std::vector<Cidr> subnets{pub.network.subnet};
        if (pub.network.subnet6) subnets.push_back(*pub.network.subnet6);
        for (const auto& subnet : subnets)
            if (auto r = would.created ? links.foreign_route(subnet, pub.network.bridge, "")
                                       : std::nullopt)
                throw Error("bridge " + pub.network.bridge + " is missing, and subnet " +
                            subnet.str() + " is on interface " + shown(r->dev) +
                            " (renamed by hand?): name it " + pub.network.bridge +
                            " again, or remove it, and run restore again");
        if (would.created || would.address_added || would.brought_up || would.address6_added) {
            make_bridge(pub.network, links, host, store_, nullptr);
            done.push_back("bridge " + pub.network.bridge);
        }
        auto ns = host_.namespaces.open(pub.netns);
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
        if (!done.empty()) crash_point(Step::restore_links);
    }
    // A proxy that died: a new one, with new listeners, and the redirects
    // pointed at them below.
    if (pub.proxy && !host_.proxies.running({pub.proxy->pid, pub.proxy->start_time})) {
        // One a repair killed before it recorded the pid holds the ports.
        for (const auto& f : host_.proxies.find())
            if (f.id == pub.id) host_.proxies.stop(f.process);
        proxy_fds = host_.proxies.open_sockets(pub);
        pub.proxy->listen4 = proxy_fds->port4;
        pub.proxy->listen6 = proxy_fds->port6;
        pub.proxy->ipv6 = proxy_fds->ipv6;
    }
    // The table, chains and sets as `up` makes them (adding a set element
    // that is there changes nothing); map elements, only the missing. The
    // caller puts every publication's into one batch.
    own = change_for_up(pub);
    own.add.clear();
    own.del.clear();
    if (!batch.table) {
        if (!batch.table_named) done.push_back("table inet " + std::string(kTableName));
        batch.table_named = true;
    } else if (batch.chains_differ) {
        if (!batch.chains_named) done.push_back("chains");
        batch.chains_named = true;
    } else if (!host_.tables.network_present(pub.network, !pub.host_veth.empty())) {
        done.push_back("sets");
    }
    std::size_t adds = 0;
    for (const auto& want : nat_elements(pub)) {
        auto it = batch.held[want.map].find(want.key_bytes());
        if (it != batch.held[want.map].end() &&
            std::equal(want.data.begin(), want.data.begin() + want.data_len,
                       it->second.data.begin(), it->second.data.begin() + it->second.data_len))
            continue;
        if (it != batch.held[want.map].end()) own.del.push_back(it->second);  // a dead proxy's port
        own.add.push_back(want);
        ++adds;
    }
    if (adds) done.push_back(std::to_string(adds) + (adds == 1 ? " map element" : " map elements"));
    added = adds > 0;
    return done;
}

std::vector<std::string> Publisher::restore_rewrite(
    const Publication& pub, HostState& host, std::optional<std::vector<RewriteEntry>>& held) {
    std::vector<std::string> done;
    if (!pub.rewrite) return done;
    const bool was = host_.rewriter.attached();
    if (auto why = attach_rewriter(host.rewrite_cgroup.value_or(""), host_.rewriter, host, store_,
                                   nullptr))
        throw Error("the kernel cannot rewrite connections to loopback here (" + *why + ")" +
                    (pub.proxy ? "; the proxy serves them meanwhile" : ""));
    if (!was) {
        done.push_back("socket programs");
        held.reset();
    }
    if (!held) held = host_.rewriter.entries();
    const auto add = uncovered(rewrite_entries(pub), *held, true);
    if (!add.empty()) {
        host_.rewriter.add(add);  // over whatever held those ports
        held = overlay(*held, add);
        done.push_back(std::to_string(add.size()) +
                       (add.size() == 1 ? " loopback rewrite" : " loopback rewrites"));
    }
    if (!done.empty()) crash_point(Step::restore_rewrite);
    return done;
}

std::vector<std::string> Publisher::restore_proxy(Publication& pub,
                                                  std::optional<ProxyFds>& proxy_fds, bool added) {
    std::vector<std::string> done;
    // Datagrams that came while the rules were missing left entries that
    // would keep their flows away from the container.
    if (added)
        if (auto note = host_.conntrack.flush_udp(pub.mappings)) notes_.push_back(*note);
    if (proxy_fds) {
        auto started = host_.proxies.start(pub, *proxy_fds);
        crash_point(Step::restore_proxy_started);
        pub.proxy->pid = started.pid;
        pub.proxy->start_time = started.start_time;
        store_.save(pub);
        done.push_back("proxy (pid " + std::to_string(started.pid) + ")");
    }
    return done;
}

Publisher::Restored Publisher::restore() {
    notes_.clear();
    host_.probe.require_capabilities();
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
    host_.tables.check_owner();
    std::vector<std::string> bridges;
    for (const auto& p : existing)
        bridges.push_back(p.network.bridge);
    const auto seen = host_.foreign.read(bridges);
    // What the table lacks, for every publication, goes in one batch: after
    // a flush, no container is back before another.
    RestoreBatch batch;
    batch.table = host_.tables.table_exists();
    batch.chains_differ = batch.table && !host_.tables.base_differences().empty();
    if (batch.table)
        for (NatMap map : kNatMaps)
            for (const auto& e : host_.tables.elements(map))
                batch.held[map][e.key_bytes()] = e;
    struct Mending {
        Publication* pub;
        std::vector<std::string> done;
        FirewallChange change;  // its part of the batch
        std::optional<ProxyFds> proxy_fds;
        bool added = false;
        std::optional<std::string> failed;  // why its part of the table is not back
    };
    std::vector<Mending> mending;
    for (auto& p : existing) {
        if (!host_.namespaces.alive(p)) {
            result.failed.push_back(p.id + ": namespace " + p.netns +
                                    " is gone; portpub gc removes its record");
            continue;
        }
        Mending m{&p, {}, {}, {}, false, {}};
        try {
            m.done = restore_links(p, host, batch, m.change, m.proxy_fds, m.added);
            merge_change(batch.change, m.change);
            mending.push_back(std::move(m));
        } catch (const Error& e) {
            result.failed.push_back(p.id + ": " + e.what());
        }
    }
    try {
        host_.firewall.apply(batch.change);
        if (!batch.table || !batch.change.add.empty()) crash_point(Step::restore_firewall);
    } catch (const Error&) {
        // One publication's part must not keep the others' away: each alone.
        for (auto& m : mending) {
            try {
                host_.firewall.apply(m.change);
            } catch (const Error& e) {
                m.failed = e.what();
            }
        }
    }
    std::set<std::string> passed;
    std::optional<std::vector<RewriteEntry>> held_rewrites;  // read once, kept in step
    for (auto& m : mending) {
        Publication& p = *m.pub;
        try {
            if (!m.failed)
                for (auto& d : restore_proxy(p, m.proxy_fds, m.added))
                    m.done.push_back(std::move(d));
            for (auto& d : restore_rewrite(p, host, held_rewrites))
                m.done.push_back(std::move(d));
            // Once a bridge, and after its bridge is back.
            if (p.pass_firewalls && !p.host_veth.empty() &&
                passed.insert(p.network.bridge).second) {
                const auto mended = m.done.size();
                for (auto& d :
                     pass_foreign_firewalls(p.network, seen, host_.foreign, host, store_, nullptr))
                    m.done.push_back(std::move(d));
                if (m.done.size() > mended) crash_point(Step::restore_firewalls);
            }
            std::string what;
            for (const auto& d : m.done)
                what += (what.empty() ? "" : ", ") + d;
            if (!what.empty()) result.done.push_back("restored " + p.id + ": " + what);
            if (m.failed) result.failed.push_back(p.id + ": " + *m.failed);
        } catch (const Error& e) {
            result.failed.push_back(p.id + ": " + e.what());
        }
    }
    return result;
}

}  // namespace portpub
