// Which connections to loopback the kernel rewrites for a publication: the
// entries of the socket programs' service map (sock_rewrite.hpp), decided
// from the publication alone. A TCP or UDP mapping that the proxy would serve
// on 127.0.0.0/8 or ::1 gets one entry a family, for its whole range of
// ports; connect() and sendmsg() to it then go straight to the container. The
// map holds a range as a few prefixes of the port (port_blocks), so that
// 65,535 ports cost as little as one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "portpub/publication.hpp"

namespace portpub {

struct RewriteEntry {
    Family family = Family::v4;  // of the address dialed
    Proto proto = Proto::tcp;
    // The loopback address dialed (an IPv4 mapping bound to one); nullopt:
    // every one of the family (127.0.0.0/8, or ::1).
    std::optional<IpAddress> address;
    std::uint16_t port = 0;            // the first host port
    std::uint16_t last = 0;            // the last one
    IpAddress target4;                 // the container's IPv4 address
    std::optional<IpAddress> target6;  // its IPv6 one; none: ::1 reaches target4
    std::uint16_t target_port = 0;     // where `port` goes; the next ones follow it
    friend auto operator<=>(const RewriteEntry&, const RewriteEntry&) = default;
};

// The entries of `p` (whatever p.rewrite says), joined and sorted.
std::vector<RewriteEntry> rewrite_entries(const Publication& p);

// Sorted, with entries that continue one another (same key and target, the
// ports of both following on) made one.
std::vector<RewriteEntry> join_runs(std::vector<RewriteEntry> entries);

// The ports of `these` that `by` does not cover, as entries (joined). With
// `same_target`, an entry of `by` covers only ports it sends where `these`
// does; without, any entry for the same family, protocol and address does.
std::vector<RewriteEntry> uncovered(const std::vector<RewriteEntry>& these,
                                    const std::vector<RewriteEntry>& by, bool same_target);

// `held` after `added` were written over it: what the map then rewrites.
std::vector<RewriteEntry> overlay(const std::vector<RewriteEntry>& held,
                                  const std::vector<RewriteEntry>& added);

// A range of ports as aligned power-of-two blocks, the map's prefixes: 2^bits
// ports from `first`. At most 30 for any range, 16 for 1-65535.
struct PortBlock {
    std::uint16_t first = 0;
    int bits = 0;
    friend bool operator==(const PortBlock&, const PortBlock&) = default;
};
std::vector<PortBlock> port_blocks(std::uint16_t first, std::uint16_t last);

// How loopback is served for `p`, as `ls` says it: "kernel" (rewritten),
// "proxy", or "none" (nothing is published on loopback, or --no-proxy where
// the kernel cannot rewrite).
std::string loopback_service(const Publication& p);

// --loopback, the annotation and the CNI key: "kernel" (true: rewritten,
// the proxy beside) or "proxy" (false). Throws Error naming `where` otherwise.
bool parse_loopback_mode(const std::string& text, const std::string& where);

// "tcp 127.0.0.1:8080 -> 198.51.100.2:80" or "tcp [::1]:8000-8009 ->
// 198.51.100.2:80-89", for check's and gc's lines.
std::string describe(const RewriteEntry& e);

}  // namespace portpub
