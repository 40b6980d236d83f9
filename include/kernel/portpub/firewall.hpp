// What portpub does to its nftables table, as two interfaces: the one command
// that changes it (a change, all of it or none) and the queries that read it
// (`check`, `gc`, `restore`, and `up`'s checks before it changes anything). NftFirewall implements
// both over netlink; the publisher is handed them, so that a test can hand it fakes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "portpub/firewall_change.hpp"

namespace portpub {

inline constexpr const char* kTableName = "portpub";  // table inet portpub

class FirewallCommand {
  public:
    virtual ~FirewallCommand() = default;
    // Applies the change in one batch. Deleting what is already gone is not an
    // error: `down` must work after a ruleset flush.
    virtual void apply(const FirewallChange& change) = 0;
};

class FirewallView {
  public:
    virtual ~FirewallView() = default;
    // Throws Error when the table serves another state directory's records.
    virtual void check_owner() = 0;
    virtual bool table_exists() = 0;
    // For each of `elements`, in order: whether its map holds its key.
    virtual std::vector<bool> in_kernel(const std::vector<NatElement>& elements) = 0;
    // Every element of one map, as the kernel holds it.
    virtual std::vector<NatElement> elements(NatMap map) = 0;
    // Whether the sets hold the network's subnet and bridge, and, with
    // `isolated`, whether the network is closed to the outside.
    virtual bool network_present(const Network& net, bool isolated) = 0;
    // How the table's chains differ from what portpub installs; empty when
    // they match (or when there is no table: see table_exists()).
    virtual std::vector<std::string> base_differences() = 0;
};

}  // namespace portpub
