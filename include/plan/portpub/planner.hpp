// From a request to a Publication value: every check that needs no kernel
// happens here, so that bad input fails before anything is changed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "portpub/naming.hpp"
#include "portpub/port_allocator.hpp"
#include "portpub/publication.hpp"

namespace portpub {

// A container that already has its interface and address, made by the CNI
// plugin before portpub in a chain: portpub publishes to `address` and makes
// no link.
struct Attachment {
    IpAddress address;
    std::optional<IpAddress> address6;  // in network.subnet6
    Network network;                    // the other plugin's bridge (or host-side link) and subnet
};

struct UpRequest {
    std::vector<std::string> specs;
    std::string netns;
    std::optional<std::string> id;
    std::string bridge = "portpub0";
    std::string subnet = "10.77.0.0/16";
    // IPv6 for the container: --subnet6, or --ipv6 alone for the bridge's
    // default unique local /64 (default_subnet6).
    bool ipv6 = false;
    std::optional<std::string> subnet6;
    std::string ifname = "eth0";
    bool proxy = true;  // serve loopback and IPv6 through a userland proxy
    // Rewrite loopback connections in the kernel (--loopback kernel), the
    // proxy serving what it cannot; false: the proxy alone (--loopback proxy).
    bool rewrite = true;
    // The cgroup v2 directory the socket programs attach at (--cgroup); "":
    // the root of the hierarchy. Where they are attached already, they stay.
    std::string cgroup;
    bool reserve = true;               // hold every published port with a socket
    bool runtime_holds_ports = false;  // see ProxyInfo::runtime_holds_ports
    std::uint32_t udp_timeout = 90;    // seconds
    std::optional<Attachment> attached;
    std::optional<std::string> cni_network;  // see Publication::cni_network
    std::optional<OciOrigin> oci;            // see Publication::oci
    bool pass_firewalls = true;              // see Publication::pass_firewalls
    // Start the state directory's watcher unless one runs (--no-watch: not).
    bool watch = true;
};

// The namespace as the shell found it: resolved path and nsfs inode.
struct NetnsIdentity {
    std::string path;
    std::uint64_t inode = 0;
};

struct Plan {
    Publication publication;
    std::optional<Publication> replaces;  // an earlier publication of the same id
};

// "web" for /run/netns/web (any directory named netns), else "netns-<inode>".
std::string derive_id(const std::string& path, std::uint64_t inode);

// The IPv6 subnet the request asks for: --subnet6, or the bridge's default
// with --ipv6; nullopt for IPv4 only. Throws Error for a bad --subnet6.
std::optional<Cidr> requested_subnet6(const UpRequest& req);

// The checks that need nothing but the request: specs, names, subnet. Throws
// Error on the first problem; plan_up runs them too.
void validate_request(const UpRequest& req);

// The id an `up` publishes under: --id, or the one derived from the namespace.
std::string publication_id(const UpRequest& req, const NetnsIdentity& ns);

// What the host shows in use beyond the usable records: container addresses
// whose host veth exists (a record portpub cannot read, or none at all), and
// whether some record could not be read.
struct UnrecordedUse {
    std::set<IpAddress> addresses;
    bool records_incomplete = false;
};

// `namespace_alive` tells whether the namespace a record names still exists
// (the same file, the same inode); an empty function means it does.
Plan plan_up(const UpRequest& req, const NetnsIdentity& ns,
             const std::vector<Publication>& existing, const HostPortFacts& facts,
             const std::function<bool(const Publication&)>& namespace_alive = {},
             const UnrecordedUse& unrecorded = {});

}  // namespace portpub
