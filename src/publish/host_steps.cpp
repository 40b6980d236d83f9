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
    Sysctls& sysctls, HostState& host, StateStore& store, bool ipv6) {
    std::vector<std::pair<const ForwardingSysctl*, std::string>> changed;
    for (const ForwardingSysctl* f : {&kForward4, &kForward6}) {
        if (f == &kForward6 && !ipv6) continue;
        auto value = sysctls.read(f->key);
        if (!value || *value == "1") continue;
        if (!(host.*(f->before))) {
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
std::vector<std::string> put_ip_forwarding_back(Sysctls& sysctls, HostState& host,
                                                StateStore& store,
                                                const std::vector<Publication>& remaining,
                                                bool& saved) {
    std::vector<std::string> done;
    const bool need4 = !remaining.empty() || forwards_need_ip_forward(store);
    const bool need6 = std::any_of(remaining.begin(), remaining.end(),
                                   [](const Publication& r) { return r.address6.has_value(); }) ||
                       forwards_need_ip6_forward(store);
    for (const ForwardingSysctl* f : {&kForward4, &kForward6}) {
        auto& before = host.*(f->before);
        if (!before || (f == &kForward4 ? need4 : need6)) continue;
        sysctls.write(f->key, *before);
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

std::string interrupted(const Publication& p) {
    return p.phase == Publication::Phase::pending ? "an up of it was interrupted"
                                                  : "a down of it was interrupted";
}

}  // namespace portpub
