// Links, addresses and routes through libnl-route-3: the bridge, the veth pair
// and the container side of it. Never runs `ip`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "portpub/netns.hpp"
#include "portpub/publication.hpp"
#include "portpub/state_store.hpp"

struct nl_sock;
struct rtnl_link;

namespace portpub {

// A NETLINK_ROUTE socket in the network namespace current at construction.
class RouteSocket {
  public:
    RouteSocket();
    ~RouteSocket();
    RouteSocket(const RouteSocket&) = delete;
    RouteSocket& operator=(const RouteSocket&) = delete;
    nl_sock* get() const { return sk_; }

  private:
    nl_sock* sk_ = nullptr;
};

class Links {
  public:
    Links() = default;  // works in the current (host) network namespace

    // Creates the bridge with the gateway address, or reuses one that exists
    // and matches; throws if it exists and does not match. Says what it did.
    // With `pin_mac` (no portpub container is on it yet) the bridge's MAC is
    // set to its current value, so that it stops following the MAC of its
    // ports: the gateway's MAC must not change as containers come and go.
    HostState::Bridge ensure_bridge(const Network& net, bool pin_mac);

    // What ensure_bridge(net) would change, without changing it: written
    // down before the change, so that a crash half way loses nothing.
    HostState::Bridge bridge_changes(const Network& net);
    // The names of the interfaces attached to `bridge`; empty when it is gone.
    std::vector<std::string> ports_of(const std::string& bridge);

    // Every interface of the host named as portpub names host veths.
    std::vector<std::string> host_veths();

    // Throws if the subnet overlaps a route that is not on `net.bridge`.
    void check_subnet_free(const Network& net);

    // The veth pair: host end on the bridge with hairpin on, the peer moved
    // into `ns`, renamed to p.ifname, addressed, up, with a default route via
    // the gateway; loopback of `ns` up.
    void create_container_link(const Publication& p, const Netns& ns);

    // Whether interface `port` is attached to `bridge`.
    bool on_bridge(const std::string& port, const std::string& bridge);
    // Attaches `port` to `bridge` again (after the bridge was re-made), with
    // hairpin on, and brings it up.
    void attach(const std::string& port, const std::string& bridge);

    bool link_exists(const std::string& name);
    // "bridge", "veth", ...; "" when there is no such link (or no type).
    std::string link_type(const std::string& name);
    void delete_link(const std::string& name);                          // no error if absent
    void set_link_down(const std::string& name);                        // no error if absent
    void remove_address(const std::string& link, const Cidr& address);  // no error if absent

  private:
    // The container's IPv6 address and default route, on interface `index`
    // of the namespace `csk` is in.
    static void add_ipv6(nl_sock* csk, int index, const Publication& p);
    // Address, MAC and up state of an existing bridge; records each change in `did`.
    void configure_bridge(nl_sock* sk, rtnl_link* bridge, const Network& net, bool pin_mac,
                          HostState::Bridge& did);

    RouteSocket host_;
};

}  // namespace portpub
