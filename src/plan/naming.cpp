// The checks on names that reach paths, records and messages (container ids, CNI network
// names, interface names, namespace paths), and the host veth name and container MAC derived
// from a container's IPv4 address.
#include "portpub/naming.hpp"

#include <algorithm>
#include <cstdio>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// Letters, digits, '_', '.' and '-', starting with a letter or digit, as the
// CNI spec defines container ids and network names (and as Docker and Podman
// make them): such a name is a file name, never a path, "." or "..".
bool is_name(const std::string& s, std::size_t max) {
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    return !s.empty() && s.size() <= max && alnum(s[0]) &&
           std::all_of(s.begin(), s.end(),
                       [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

}  // namespace

void validate_id(const std::string& id) {
    if (!is_name(id, kMaxIdLength))
        throw Error("invalid container id '" + shown(id, 40) + "': use 1-" +
                    std::to_string(kMaxIdLength) +
                    " letters, digits, '_', '.' or '-', starting with a letter or digit");
}

void validate_network_name(const std::string& name) {
    if (!is_name(name, kMaxNetworkNameLength))
        throw Error("invalid network name '" + shown(name, 40) + "': use 1-" +
                    std::to_string(kMaxNetworkNameLength) +
                    " letters, digits, '_', '.' or '-', starting with a letter or digit");
}

void validate_ifname(const std::string& name, const std::string& what) {
    bool ok = !name.empty() && name.size() <= 15 && name != "." && name != ".." &&
              std::all_of(name.begin(), name.end(), [](char c) {
                  return c > ' ' && c < 0x7F && c != '/' && c != ':';  // printable ASCII
              });
    if (!ok)
        throw Error("invalid " + what + " '" + shown(name, 40) +
                    "': interface names have 1-15 characters and no '/', ':' or spaces");
}

void validate_netns_path(const std::string& path) {
    if (path.empty())
        throw Error(
            "the network namespace path is empty; give the namespace file, as in "
            "--netns /run/netns/web or /proc/PID/ns/net");
    // The path goes into the JSON record, which holds UTF-8 only.
    if (printable(path) != path)
        throw Error("namespace path '" + shown(path) +
                    "' has control characters or bytes that are not UTF-8; rename the file, or "
                    "pass /proc/PID/ns/net of a process in the namespace");
}

std::string host_veth_name(const IpAddress& address) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "pp%08x", address.v4_value());
    return buf;
}

bool is_host_veth_name(const std::string& name) {
    return name.size() == 10 && name.rfind("pp", 0) == 0 &&
           std::all_of(name.begin() + 2, name.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<IpAddress> host_veth_address(const std::string& name) {
    if (!is_host_veth_name(name)) return std::nullopt;
    return IpAddress::v4(static_cast<std::uint32_t>(std::stoul(name.substr(2), nullptr, 16)));
}

std::array<std::uint8_t, 6> container_mac(const IpAddress& address) {
    return {0x02, 0x70, address.data()[0], address.data()[1], address.data()[2], address.data()[3]};
}

}  // namespace portpub
