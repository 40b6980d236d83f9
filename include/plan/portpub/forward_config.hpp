// `portpub forward`: port forwards without a container, kept in a declarative
// file (default /etc/portpub/forwards.json) that `forward apply` makes true:
//
//   {"forwards": [{"publish": "80:5000/tcp"},
//                 {"publish": "8080:3000/tcp", "to": "192.0.2.10"}]}
//
// Parsing and checking the file and the -p specs; pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portpub/ip_address.hpp"
#include "portpub/port_allocator.hpp"
#include "portpub/port_spec.hpp"

namespace portpub {

inline constexpr const char* kDefaultForwardConfig = "/etc/portpub/forwards.json";

struct Forward {
    Proto proto = Proto::tcp;
    PortRange host;    // ports of this host, on every address
    PortRange target;  // as many ports, one to one
    // nullopt: a program of this host (kernel redirect); else another machine.
    std::optional<IpAddress> to;

    bool remote() const { return to.has_value(); }
    // "80:5000/tcp", as the file keeps it.
    std::string publish() const;
    // "80:5000/tcp" or "8080:3000/tcp --to 192.0.2.10": how a user names it.
    std::string name() const;
    // "80/tcp -> local port 5000", "8080/tcp -> 192.0.2.10:3000".
    std::string describe() const;
    // The target of host port `port`, as "127.0.0.1:5000" or "[2001:db8::10]:3000".
    std::string target_text(std::uint16_t port) const;
    friend bool operator==(const Forward&, const Forward&) = default;
};

// How a --to address is judged: as a user gives it now, or as the forward
// state recorded what was applied (by a portpub that accepted more).
enum class ToCheck : std::uint8_t { as_given, as_applied };

// One -p value and an optional --to address; throws Error quoting the bad
// value and saying what to write instead.
Forward parse_forward(std::string_view publish, std::optional<std::string_view> to = {},
                      ToCheck check = ToCheck::as_given);

// The file's forwards, in order; an empty text (or whitespace) means none.
// Throws Error naming `path`, the entry and what is wrong; the whole file is
// checked, overlaps included, before anything is returned.
std::vector<Forward> parse_forward_file(std::string_view text, const std::string& path);

// The file's text for `forwards` (parse_forward_file reads it back).
std::string forward_file_text(const std::vector<Forward>& forwards);

// Throws Error naming both forwards when two claim a common host port and
// protocol; `where` says where they come from ("in /etc/portpub/forwards.json").
void check_overlaps(const std::vector<Forward>& forwards, const std::string& where);

// Throws Error naming the container when a forward claims a host port a
// container publishes (on any of its addresses).
void check_container_conflicts(const std::vector<Forward>& forwards,
                               const std::vector<PublishedPort>& published);

// The forward that holds host port `port` of `proto`, if any.
const Forward* forward_holding(const std::vector<Forward>& forwards, Proto proto,
                               std::uint16_t port);

}  // namespace portpub
