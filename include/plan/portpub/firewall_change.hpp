// What one nftables batch must do for an `up` or a `down`, decided from the
// records alone. The table, its chains and sets exist while at least one
// container is published; a network's subnet and bridge are in the sets while
// one of its containers is.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "portpub/nat_elements.hpp"
#include "portpub/publication.hpp"

namespace portpub {

struct FirewallChange {
    bool ensure_base = false;  // create table, maps, sets, chains; (re)write the rules
    bool drop_table = false;   // the last container is gone: delete the whole table
    std::vector<Network> add_networks, del_networks;
    // Networks portpub made (not another CNI plugin's, which portpub only
    // publishes into): closed to traffic from outside but for published ports.
    std::vector<Network> add_isolated, del_isolated;
    std::vector<NatElement> add, del;
};

FirewallChange change_for_up(const Publication& p);
// `change` puts back, too, what the table lacks of the publications that stay
// beside it (a flush, a deleted chain or map took it): each one's network,
// and each of its elements for which `held` (called with its elements, in
// nat_elements' order) says false. Returns how many publications lacked an
// element. `up` calls it when the table or a chain is gone, so that no
// neighbour falls to the proxy and loses its clients' addresses.
std::size_t add_missing_neighbours(
    FirewallChange& change, const std::vector<Publication>& neighbours,
    const std::function<std::vector<bool>(const std::vector<NatElement>&)>& held);
// `remaining`: every other publication that stays. `others_unknown`: there
// may be more that portpub cannot read (an unusable record), so the table
// and the network sets stay (its elements go) even when `remaining` is empty.
FirewallChange change_for_down(const Publication& p, const std::vector<Publication>& remaining,
                               bool others_unknown = false);

}  // namespace portpub
