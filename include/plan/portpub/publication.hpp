// What portpub made for one container: the plan `up` applies and the record
// `down` reads back. It holds everything teardown needs, so `down` works when
// the container's namespace is already gone.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "portpub/ip_address.hpp"
#include "portpub/mapping.hpp"

namespace portpub {

struct Network {
    std::string bridge;
    Cidr subnet;
    IpAddress gateway;
    // IPv6 too (--ipv6, --subnet6): the bridge's IPv6 prefix and address.
    std::optional<Cidr> subnet6;
    IpAddress gateway6;  // with subnet6 only
    friend bool operator==(const Network&, const Network&) = default;
};

// The userland proxy of a container, when it has one.
struct ProxyInfo {
    // The ports that nft redirects TCP to (see proxy_listeners()); 0: none.
    std::uint16_t listen4 = 0;  // IPv4 loopback connections
    std::uint16_t listen6 = 0;  // IPv6 connections
    bool ipv6 = false;          // the host had IPv6 at `up`: the proxy serves it
    bool reserve = true;        // published ports are held by sockets of the proxy
    // The runtime holds the published ports itself (Podman does for its CNI
    // networks): the proxy binds none of them, its listeners take ports the
    // kernel picks, and UDP to loopback and from IPv6 clients is not served.
    bool runtime_holds_ports = false;
    std::uint32_t udp_timeout = 90;  // seconds a UDP flow lives without traffic
    std::int32_t pid = 0;
    std::uint64_t start_time = 0;  // with pid, the process's identity (/proc/PID/stat field 22)
    friend bool operator==(const ProxyInfo&, const ProxyInfo&) = default;
};

// Set by the OCI hook at createRuntime: what that container's poststop must
// match before it removes the publication (a second container of the same
// id, refused at createRuntime, gets a poststop too).
struct OciOrigin {
    std::string bundle;    // the state's "bundle"; "" when it had none
    std::int64_t pid = 0;  // the state's "pid"; 0 when it had none
    friend bool operator==(const OciOrigin&, const OciOrigin&) = default;
};

struct Publication {
    std::string id;
    std::string netns;              // path as resolved at `up`
    std::uint64_t netns_inode = 0;  // identity of the namespace at `up`
    Network network;
    std::string ifname;  // interface inside the container
    // The host end of the veth pair, on the bridge. Empty when portpub did not
    // make the container's link: a CNI plugin before it in a chain did.
    std::string host_veth;
    IpAddress address;  // the container's address in network.subnet
    // Its IPv6 address in network.subnet6, when the network has one: IPv6
    // clients then reach it through kernel DNAT, as IPv4 ones do.
    std::optional<IpAddress> address6;
    std::vector<Mapping> mappings;
    std::optional<ProxyInfo> proxy;
    // Connections from the host to its published ports on 127.0.0.0/8 and ::1
    // are rewritten in the kernel to the container (loopback_rewrite.hpp):
    // the socket programs serve them, and the proxy only what they leave.
    bool rewrite = false;
    // The CNI network this was published for, by `ADD`: CHECK, DEL and GC
    // match it. Nothing for the CLI and the OCI hook.
    std::optional<std::string> cni_network;
    // The OCI hook's container, for its poststop to match. Nothing for the
    // CLI and CNI, and in records of portpub before 0.6.
    std::optional<OciOrigin> oci;
    // Which way of running portpub made it: a runtime's clean-up call (OCI
    // poststop, CNI DEL) removes only what that way made.
    enum class MadeBy : std::uint8_t { unknown, cli, oci_hook, cni };  // unknown: before 0.6
    MadeBy made_by = MadeBy::unknown;
    // Whether portpub lets its bridge's traffic through the firewalls beside
    // it (iptables' FORWARD, a firewalld zone): false with --firewall none.
    bool pass_firewalls = true;
    // A record is written before the kernel is changed (pending) and before
    // it is taken apart (removing), so that a portpub killed half way leaves
    // a record of everything it may have made. Under the state lock, a record
    // that is not `published` was left by a process that died.
    enum class Phase : std::uint8_t { published, pending, removing };
    Phase phase = Phase::published;

    friend bool operator==(const Publication&, const Publication&) = default;
};

// The on-disk record (a compact form: mappings stay runs).
nlohmann::json to_record(const Publication& p);
// Throws Error naming `origin` (a file name) when the record is malformed.
Publication from_record(const nlohmann::json& j, const std::string& origin);

// The user-facing JSON of `up --json` and `ls --json`: every mapping expanded
// to the host port actually used.
nlohmann::json to_report(const Publication& p);

}  // namespace portpub
