// The nftables change of an up or a down, from the records: `up` adds the elements and the
// network (isolated only when portpub made it); `down` removes them, drops the table with the
// last container, and keeps what another record, or one it cannot read, may still use.
#include "portpub/firewall_change.hpp"

#include <algorithm>

namespace portpub {

namespace {

// portpub made the container's link, and so its network (a container another
// CNI plugin attached has no host veth of portpub's).
bool owns_network(const Publication& p) {
    return !p.host_veth.empty();
}

}  // namespace

FirewallChange change_for_up(const Publication& p) {
    FirewallChange c;
    c.ensure_base = true;
    c.add_networks.push_back(p.network);
    if (owns_network(p)) c.add_isolated.push_back(p.network);
    c.add = nat_elements(p);
    return c;
}

std::size_t add_missing_neighbours(
    FirewallChange& change, const std::vector<Publication>& neighbours,
    const std::function<std::vector<bool>(const std::vector<NatElement>&)>& held) {
    auto add_once = [](std::vector<Network>& list, const Network& n) {
        if (std::find(list.begin(), list.end(), n) == list.end()) list.push_back(n);
    };
    std::size_t lacking = 0;
    for (const auto& n : neighbours) {
        if (n.phase != Publication::Phase::published) continue;
        change.ensure_base = true;
        add_once(change.add_networks, n.network);
        if (owns_network(n)) add_once(change.add_isolated, n.network);
        const auto elements = nat_elements(n);
        const auto there = held(elements);
        bool lacked = false;
        for (std::size_t i = 0; i < elements.size(); ++i)
            if (i >= there.size() || !there[i]) {
                change.add.push_back(elements[i]);
                lacked = true;
            }
        lacking += lacked;
    }
    return lacking;
}

FirewallChange change_for_down(const Publication& p, const std::vector<Publication>& remaining,
                               bool others_unknown) {
    FirewallChange c;
    if (remaining.empty() && !others_unknown) {
        c.drop_table = true;  // takes every element, chain and set with it
        return c;
    }
    c.del = nat_elements(p);
    // An unreadable record may be a container of this network: its
    // masquerade and isolation stay.
    if (others_unknown) return c;
    bool network_in_use = std::any_of(remaining.begin(), remaining.end(),
                                      [&](const Publication& r) { return r.network == p.network; });
    if (!network_in_use) c.del_networks.push_back(p.network);
    const bool isolation_in_use = std::any_of(
        remaining.begin(), remaining.end(),
        [&](const Publication& r) { return owns_network(r) && r.network == p.network; });
    if (owns_network(p) && !isolation_in_use) c.del_isolated.push_back(p.network);
    return c;
}

}  // namespace portpub
