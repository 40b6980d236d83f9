// The names portpub gives and accepts: container ids and CNI network names
// (they become file names), interface names, namespace paths (they go into
// JSON records), and the host veth and MAC it derives from a container's
// address. Pure: every value that reaches a path, a deletion or a message
// passes one of these first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "portpub/ip_address.hpp"

namespace portpub {

// Container ids (--id, the OCI state's id, CNI_CONTAINERID) become file names:
// letters, digits, '_', '.', '-', starting with a letter or digit, at most
// kMaxIdLength (Docker's and Podman's ids are 64 hex digits). No '/', "..",
// NUL or control character gets through.
inline constexpr std::size_t kMaxIdLength = 128;
void validate_id(const std::string& id);
// CNI network names: the same characters (as the CNI spec has them), at most 255.
inline constexpr std::size_t kMaxNetworkNameLength = 255;
void validate_network_name(const std::string& name);
// Interface names: 1-15 printable ASCII bytes, no '/', ':' or space.
void validate_ifname(const std::string& name, const std::string& what);
// Namespace paths go into the JSON record: UTF-8, no control characters.
void validate_netns_path(const std::string& path);

// The host end of the veth pair, named after the container address so that it
// is unique on the host and recognisable: pp0a4d0002 for 10.77.0.2.
std::string host_veth_name(const IpAddress& address);
// True for a name host_veth_name() could have made.
bool is_host_veth_name(const std::string& name);
// The address a host veth name was made from; nullopt for any other name.
std::optional<IpAddress> host_veth_address(const std::string& name);

// The container interface's MAC, derived from its address (02:70:a:b:c:d,
// locally administered): an address given to another container later keeps
// its MAC, so no neighbour cache on the host ever holds a stale one.
std::array<std::uint8_t, 6> container_mac(const IpAddress& address);

}  // namespace portpub
