// The steps on the host that up, down and the repairs share: see host_steps.hpp.
#include "host_steps.hpp"

#include <algorithm>

#include "portpub/forward_state.hpp"
#include "portpub/naming.hpp"

namespace portpub {

namespace {

constexpr const char* kIpForward = "net/ipv4/ip_forward";
constexpr const char* kIp6Forward = "net/ipv6/conf/all/forwarding";

}  // namespace

std::vector<Publication> without(const std::vector<Publication>& all, const std::string& id) {
    std::vector<Publication> out;
    for (const auto& p : all)
        if (p.id != id) out.push_back(p);
    return out;
}

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

const ForwardingSysctl kForward4{kIpForward, "ip_forward", &HostState::ip_forward_before};
const ForwardingSysctl kForward6{kIp6Forward, "IPv6 forwarding", &HostState::ip6_forward_before};

// Forwarding on for IPv4, and for IPv6 with `ipv6`, each earlier value
// written down first. Returns the settings changed, with their earlier values.
std::vector<std::pair<const ForwardingSysctl*, std::string>> turn_ip_forwarding_on(
    Sysctls& sysctls, Links& links, HostState& host, StateStore& store, bool ipv6) {
    std::vector<std::pair<const ForwardingSysctl*, std::string>> changed;
    for (const ForwardingSysctl* f : {&kForward4, &kForward6}) {
        if (f == &kForward6 && !ipv6) continue;
        auto value = sysctls.read(f->key);
        if (!value || *value == "1") continue;
        if (!(host.*(f->before))) {
            if (!host.ip_forward_before && !host.ip6_forward_before)
                for (const auto& b : links.bridges_in_use())
                    if (!host.bridges.contains(b)) host.bridges_before_forwarding.insert(b);
            host.*(f->before) = *value;
            store.save_host(host);
        }
        sysctls.write(f->key, "1");
        changed.emplace_back(f, *value);
    }
    return changed;
}

// Puts back the forwarding settings that neither a record of `remaining` nor
// a remote forward (portpub forward --to) needs; says what it did. A failed
// save of the host state stops nothing: `saved` turns false.
std::vector<std::string> put_ip_forwarding_back(Sysctls& sysctls, Links& links, HostState& host,
                                                StateStore& store,
                                                const std::vector<Publication>& remaining,
                                                bool& saved, std::vector<std::string>& kept) {
    std::vector<std::string> done;
    // Another program's network forwards too: turning forwarding off would
    // cut it (Docker turns it on when it starts, and never again).
    std::optional<std::string> other;
    if (host.ip_forward_before || host.ip6_forward_before)
        for (const auto& b : links.bridges_in_use())
            if (!host.bridges.contains(b) && !host.bridges_before_forwarding.contains(b)) {
                other = b;
                break;
            }
    const bool need4 = !remaining.empty() || forwards_need_ip_forward(store);
    const bool need6 = std::any_of(remaining.begin(), remaining.end(),
                                   [](const Publication& r) { return r.address6.has_value(); }) ||
                       forwards_need_ip6_forward(store);
    for (const ForwardingSysctl* f : {&kForward4, &kForward6}) {
        auto& before = host.*(f->before);
        if (!before || (f == &kForward4 ? need4 : need6)) continue;
        if (other && *before != "1") {
            kept.push_back("left " + std::string(f->name) + " at 1, not " + *before +
                           " as portpub found it: bridge " + shown(*other) +
                           " has ports portpub did not make, and may need it");
        } else {
            sysctls.write(f->key, *before);
            done.push_back("put " + std::string(f->name) + " back to " + *before);
        }
        before.reset();
        if (!host.ip_forward_before && !host.ip6_forward_before)
            host.bridges_before_forwarding.clear();
        try {
            store.save_host(host);
            saved = true;
        } catch (const Error&) {
            saved = false;
        }
    }
    return done;
}

std::string interrupted(const Publication& p) {
    return p.phase == Publication::Phase::pending ? "an up of it was interrupted"
                                                  : "a down of it was interrupted";
}

std::vector<std::string> pass_foreign_firewalls(const Network& net, const ForeignFirewalls& seen,
                                                ForeignFirewallCommands& fw, HostState& host,
                                                StateStore& store, Rollback* rollback) {
    std::vector<std::string> done;
    auto& bridge = host.bridges[net.bridge];
    for (const bool v6 : {false, true}) {
        if (v6 && !net.subnet6) continue;
        if (!wants_iptables_accepts(seen, v6) || has_iptables_accepts(seen, v6, net.bridge))
            continue;
        (v6 ? bridge.ip6tables_accepts : bridge.iptables_accepts) = true;
        // Without iptables' FORWARD, the batch may make it and its table:
        // written down as made before, so that a crash in between loses
        // nothing (only what is empty is ever deleted for it).
        auto& recorded = v6 ? host.ip6tables_made : host.iptables_made;
        if (!iptables_forward(seen, v6)) recorded = {true, true};
        store.save_host(host);
        const auto made = fw.add_iptables_accepts(v6, net.bridge);
        if (rollback)
            rollback->add([&fw, v6, name = net.bridge, made] {
                fw.remove_iptables_accepts(v6, name);
                fw.remove_made(v6, made);
            });
        if ((made.table && !recorded.table) || (made.chain && !recorded.chain)) {
            recorded.table = recorded.table || made.table;
            recorded.chain = recorded.chain || made.chain;
            store.save_host(host);
        }
        done.emplace_back(v6 ? "ip6tables accepts" : "iptables accepts");
    }
    if (seen.firewalld.running) {
        const auto zone = seen.firewalld.zone_of.find(net.bridge);
        if (zone == seen.firewalld.zone_of.end() || zone->second.empty()) {
            bridge.firewalld_zone = kFirewalldZone;
            store.save_host(host);
            fw.bind_zone(kFirewalldZone, net.bridge);
            if (rollback)
                rollback->add([&fw, name = net.bridge] { fw.unbind_zone(kFirewalldZone, name); });
            done.push_back(std::string("firewalld zone ") + kFirewalldZone);
        }
    }
    return done;
}

void withdraw_foreign_firewalls(const std::string& name, ForeignFirewallCommands& fw,
                                HostState& host) {
    const auto it = host.bridges.find(name);
    if (it == host.bridges.end()) return;
    auto& bridge = it->second;
    for (const bool v6 : {false, true}) {
        bool& accepts = v6 ? bridge.ip6tables_accepts : bridge.iptables_accepts;
        if (accepts) fw.remove_iptables_accepts(v6, name);
        accepts = false;
        const bool others =
            std::any_of(host.bridges.begin(), host.bridges.end(), [&](const auto& b) {
                return v6 ? b.second.ip6tables_accepts : b.second.iptables_accepts;
            });
        auto& made = v6 ? host.ip6tables_made : host.iptables_made;
        if (!others && made != HostState::FilterMade{}) {
            fw.remove_made(v6, made);
            made = {};
        }
    }
    if (!bridge.firewalld_zone.empty()) {
        fw.unbind_zone(bridge.firewalld_zone, name);
        bridge.firewalld_zone.clear();
    }
}

std::optional<std::string> attach_rewriter(const std::string& cgroup, Rewriter& rewriter,
                                           HostState& host, StateStore& store, Rollback* rollback) {
    if (rewriter.attached()) {
        if (!cgroup.empty() && host.rewrite_cgroup && *host.rewrite_cgroup != cgroup)
            throw Error("the socket programs are attached at cgroup " + *host.rewrite_cgroup +
                        ", not " + cgroup + ": they serve every publication there; leave " +
                        "--cgroup out, or take every publication down first");
        // Whose they are: this namespace's, or another's sharing the bpffs.
        try {
            rewriter.attach(host.rewrite_cgroup.value_or(cgroup));
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::nullopt;
    }
    // Where they were, when their pins went (and they with them).
    std::string where = cgroup.empty() ? host.rewrite_cgroup.value_or("") : cgroup;
    try {
        if (where.empty()) where = rewriter.default_cgroup();
    } catch (const Error& e) {
        return std::string(e.what());
    }
    const auto before = host.rewrite_cgroup;
    host.rewrite_cgroup = where;
    store.save_host(host);
    try {
        rewriter.attach(where);
    } catch (const Error& e) {
        host.rewrite_cgroup = before;
        store.save_host(host);
        return std::string(e.what());
    }
    if (rollback)
        rollback->add([&rewriter, &host, &store, before] {
            rewriter.detach();
            host.rewrite_cgroup = before;
            store.save_host(host);
        });
    return std::nullopt;
}

bool detach_rewriter_if_unused(Rewriter& rewriter, HostState& host,
                               const std::vector<Publication>& remaining, bool shared) {
    if (!host.rewrite_cgroup || shared ||
        std::any_of(remaining.begin(), remaining.end(),
                    [](const Publication& p) { return p.rewrite; }))
        return false;
    rewriter.detach();
    host.rewrite_cgroup.reset();
    return true;
}

}  // namespace portpub
