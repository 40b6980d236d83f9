// Map elements of the nftables table, as bytes. A mapping on every host address
// goes to `pub4` keyed `meta l4proto . th dport`; one bound to a host address
// goes to `pub4addr` keyed `ip daddr . meta l4proto . th dport`. Both map to
// `container address . container port`. Each field of a concatenation takes a
// whole 32-bit register, so shorter fields are zero-padded to 4 bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "portpub/publication.hpp"

namespace portpub {

enum class NatMap : std::uint8_t { wildcard4, bound4 };

struct NatElement {
    NatMap map = NatMap::wildcard4;
    std::array<std::uint8_t, 12> key{};
    std::uint8_t key_len = 0;
    std::array<std::uint8_t, 8> data{};

    friend bool operator==(const NatElement&, const NatElement&) = default;
};

const char* map_name(NatMap m);

NatElement nat_element(const Mapping& m, std::uint32_t offset, const IpAddress& container);
std::vector<NatElement> nat_elements(const Publication& p);

// "tcp 0.0.0.0:8080 -> 10.77.0.2:80", for messages.
std::string describe(const NatElement& e);

}  // namespace portpub
