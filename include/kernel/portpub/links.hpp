// Links, addresses and routes through libnl-route-3: the bridge, the veth pair
// and the container side of it. Never runs `ip`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portpub/host_state.hpp"
#include "portpub/netns.hpp"
#include "portpub/publication.hpp"

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

// A route of the host's main table: its destination and interface.
struct ForeignRoute {
    Cidr route;
    std::string dev;
};

// The links, addresses and routes `up` makes and `down` removes, as the
// publisher sees them: NetlinkLinks is the kernel's, a test hands a fake.
class Links {
  public:
    virtual ~Links() = default;

    // Creates the bridge with the gateway address, or reuses one that exists
    // and matches; throws if it exists and does not match. Says what it did.
    // With `pin_mac` (no portpub container is on it yet) the bridge's MAC is
    // set to its current value, so that it stops following the MAC of its
    // ports: the gateway's MAC must not change as containers come and go.
    virtual HostState::Bridge ensure_bridge(const Network& net, bool pin_mac) = 0;

    // What ensure_bridge(net) would change, without changing it: written
    // down before the change, so that a crash half way loses nothing.
    virtual HostState::Bridge bridge_changes(const Network& net) = 0;
    // The names of the interfaces attached to `bridge`; empty when it is gone.
    virtual std::vector<std::string> ports_of(const std::string& bridge) = 0;

    // Every interface of the host named as portpub names host veths.
    virtual std::vector<std::string> host_veths() = 0;
    // Every bridge of the host with at least one port: a network of someone's.
    virtual std::vector<std::string> bridges_in_use() = 0;

    // A route that overlaps `subnet` and is neither on `bridge` nor on
    // `leaving_bridge` ("" for none); nullopt when there is none.
    virtual std::optional<ForeignRoute> foreign_route(const Cidr& subnet, const std::string& bridge,
                                                      const std::string& leaving_bridge) = 0;
    // The interface that has `address` (with that prefix), if one has.
    virtual std::optional<std::string> holder_of(const Cidr& address) = 0;
    // Throws if the subnet (or subnet6) overlaps a route that is not on
    // `net.bridge`, nor on `leaving_bridge` (that of a publication `up`
    // replaces, whose routes go with it; "" for none).
    virtual void check_subnet_free(const Network& net, const std::string& leaving_bridge) = 0;

    // What ensure_bridge would refuse, without a change: an interface of
    // that name that is not a bridge, or a bridge with another address
    // (but those in `leaving`, which a teardown before it removes).
    virtual void check_bridge(const Network& net, const std::vector<Cidr>& leaving) = 0;
    // What create_container_link would refuse, without a change: an
    // interface named p.ifname in `ns`, or a default route there (IPv6's
    // too, for a container with IPv6). `leaving`: the interface of the
    // publication `up` replaces, which goes with it ("" for none).
    virtual void check_container_side(const Publication& p, const Netns& ns,
                                      const std::string& leaving) = 0;

    // The veth pair: host end on the bridge with hairpin on, the peer moved
    // into `ns`, renamed to p.ifname, addressed, up, with a default route via
    // the gateway; loopback of `ns` up.
    virtual void create_container_link(const Publication& p, const Netns& ns) = 0;

    // Whether interface `port` is attached to `bridge`.
    virtual bool on_bridge(const std::string& port, const std::string& bridge) = 0;
    // Attaches `port` to `bridge` again (after the bridge was re-made), with
    // hairpin on, and brings it up.
    virtual void attach(const std::string& port, const std::string& bridge) = 0;

    virtual bool link_exists(const std::string& name) = 0;
    // "bridge", "veth", ...; "" when there is no such link (or no type).
    virtual std::string link_type(const std::string& name) = 0;
    virtual void delete_link(const std::string& name) = 0;    // no error if absent
    virtual void set_link_down(const std::string& name) = 0;  // no error if absent
    virtual void remove_address(const std::string& link,
                                const Cidr& address) = 0;  // no error if absent

    // What of the link `up` made for `p` is not as `up` made it, one phrase
    // each: the host veth down or its hairpin mode off; with `ns` (the
    // container's, while it lives), lo down, or the container's interface
    // missing, down, or without its addresses or default routes. The veth's
    // existence and bridge are the caller's to check.
    virtual std::vector<std::string> link_differences(const Publication& p, const Netns* ns) = 0;
    // Puts back what link_differences names (the veth exists); says what it
    // did, one phrase each.
    virtual std::vector<std::string> repair_link(const Publication& p, const Netns& ns) = 0;
    // The host's name of the other end of the container's interface, when
    // that is the veth portpub made (after its host end was renamed by hand,
    // say); nullopt for any other interface.
    virtual std::optional<std::string> peer_name(const Publication& p, const Netns& ns) = 0;
    // Whether `ns` has an interface named `name`.
    virtual bool exists_in(const Netns& ns, const std::string& name) = 0;
};

// Links through libnl-route-3, in the network namespace current at
// construction (the host's).
class NetlinkLinks final : public Links {
  public:
    HostState::Bridge ensure_bridge(const Network& net, bool pin_mac) override;
    HostState::Bridge bridge_changes(const Network& net) override;
    std::vector<std::string> ports_of(const std::string& bridge) override;
    std::vector<std::string> host_veths() override;
    std::vector<std::string> bridges_in_use() override;
    std::optional<ForeignRoute> foreign_route(const Cidr& subnet, const std::string& bridge,
                                              const std::string& leaving_bridge) override;
    std::optional<std::string> holder_of(const Cidr& address) override;
    void check_subnet_free(const Network& net, const std::string& leaving_bridge) override;
    void check_bridge(const Network& net, const std::vector<Cidr>& leaving) override;
    void check_container_side(const Publication& p, const Netns& ns,
                              const std::string& leaving) override;
    void create_container_link(const Publication& p, const Netns& ns) override;
    bool on_bridge(const std::string& port, const std::string& bridge) override;
    void attach(const std::string& port, const std::string& bridge) override;
    bool link_exists(const std::string& name) override;
    std::string link_type(const std::string& name) override;
    void delete_link(const std::string& name) override;
    void set_link_down(const std::string& name) override;
    void remove_address(const std::string& link, const Cidr& address) override;
    std::vector<std::string> link_differences(const Publication& p, const Netns* ns) override;
    std::vector<std::string> repair_link(const Publication& p, const Netns& ns) override;
    std::optional<std::string> peer_name(const Publication& p, const Netns& ns) override;
    bool exists_in(const Netns& ns, const std::string& name) override;

  private:
    // Address, MAC and up state of an existing bridge; records each change in `did`.
    void configure_bridge(nl_sock* sk, rtnl_link* bridge, const Network& net, bool pin_mac,
                          HostState::Bridge& did);

    // The host's route socket, opened on first use: a command that never
    // looks at a link (ls) opens none.
    nl_sock* host() {
        if (!host_) host_.emplace();
        return host_->get();
    }
    std::optional<RouteSocket> host_;
};

}  // namespace portpub
