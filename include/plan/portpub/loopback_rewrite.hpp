// Which connections to loopback the kernel rewrites for a publication: the
// entries of the socket programs' service map (sock_rewrite.hpp), decided
// from the publication alone. A TCP or UDP mapping that the proxy would serve
// on 127.0.0.0/8 or ::1 gets one entry a host port and family; connect() and
// sendmsg() to it then go straight to the container.
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
    std::uint16_t port = 0;
    IpAddress target4;                 // the container's IPv4 address
    std::optional<IpAddress> target6;  // its IPv6 one; none: ::1 reaches target4
    std::uint16_t target_port = 0;
    friend auto operator<=>(const RewriteEntry&, const RewriteEntry&) = default;
};

// The entries of `p` (whatever p.rewrite says), sorted.
std::vector<RewriteEntry> rewrite_entries(const Publication& p);

// Whether two entries have the same key (what the map holds one of).
bool same_key(const RewriteEntry& a, const RewriteEntry& b);

// How loopback is served for `p`, as `ls` says it: "kernel" (rewritten),
// "proxy", or "none" (nothing is published on loopback, or --no-proxy where
// the kernel cannot rewrite).
std::string loopback_service(const Publication& p);

// --loopback, the annotation and the CNI key: "kernel" (true: rewritten,
// the proxy beside) or "proxy" (false). Throws Error naming `where` otherwise.
bool parse_loopback_mode(const std::string& text, const std::string& where);

// "tcp 127.0.0.1:8080 -> 198.51.100.2:80", for check's and gc's lines.
std::string describe(const RewriteEntry& e);

}  // namespace portpub
