// The -p grammar of `docker run`: [ip:][hostPort:]containerPort[/proto].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "portpub/ip_address.hpp"

namespace portpub {

// Values are the IP protocol numbers, as nftables matches them.
enum class Proto : std::uint8_t { tcp = 6, udp = 17, sctp = 132 };

std::string_view proto_name(Proto p);
std::optional<Proto> parse_proto(std::string_view name);  // case-insensitive

// An inclusive range of ports; a single port has first == last.
struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;

    std::uint32_t size() const { return std::uint32_t{last} - first + 1; }
    bool contains(std::uint16_t p) const { return p >= first && p <= last; }
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct PortSpec {
    std::string text;                  // as the user wrote it, for messages
    std::optional<IpAddress> host_ip;  // nullopt: every host address
    std::optional<PortRange> host;     // nullopt: a random host port per container port
    PortRange container;
    Proto proto = Proto::tcp;

    // A host range wider than one container port: pick one free port from it.
    bool picks_from_range() const { return host && host->size() > 1 && container.size() == 1; }
};

// Parses one -p value; throws Error quoting `text` and saying what is wrong.
PortSpec parse_port_spec(std::string_view text);

}  // namespace portpub
