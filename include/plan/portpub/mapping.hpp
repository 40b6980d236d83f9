// A resolved mapping: `count` consecutive host ports to as many container ports.
// Keeping runs instead of single ports makes a 65,535-port range one value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "portpub/ip_address.hpp"
#include "portpub/port_spec.hpp"

namespace portpub {

struct Mapping {
    std::optional<IpAddress> host_ip;  // nullopt: every host address
    Proto proto = Proto::tcp;
    std::uint16_t host_port = 0;
    std::uint16_t container_port = 0;
    std::uint32_t count = 1;

    std::uint16_t host_last() const { return static_cast<std::uint16_t>(host_port + count - 1); }
    std::uint16_t container_last() const {
        return static_cast<std::uint16_t>(container_port + count - 1);
    }
    friend bool operator==(const Mapping&, const Mapping&) = default;
};

// The host address as Docker prints it: 0.0.0.0 for "every address".
std::string host_ip_text(const Mapping& m);

// True when both claim a common host port of the same protocol on a common address.
bool conflicts(const Mapping& a, const Mapping& b);

// Joins adjacent runs (same address and protocol, both ports continuing).
std::vector<Mapping> merge_runs(const std::vector<Mapping>& in);

// `docker port` lines: "80/tcp -> 0.0.0.0:8080", one per port.
std::string docker_port_lines(const std::vector<Mapping>& ms);

// `docker ps` PORTS column: "0.0.0.0:8000-8010->80-90/tcp, 0.0.0.0:5353->53/udp".
std::string docker_ps_ports(const std::vector<Mapping>& ms);

std::uint64_t port_count(const std::vector<Mapping>& ms);

}  // namespace portpub
