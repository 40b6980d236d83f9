// Map elements of the nftables table, as bytes. Each field of a concatenation
// takes a whole 32-bit register, so shorter fields are zero-padded to 4 bytes.
//
//   kernel DNAT, IPv4 host addresses other than loopback (an element a port):
//     pub4        meta l4proto . th dport              -> container addr . port
//     pub4addr    ip daddr . meta l4proto . th dport   -> container addr . port
//     pub6        meta l4proto . th dport              -> container addr6 . port
//     pub6addr    ip6 daddr . meta l4proto . th dport  -> container addr6 . port
//   the proxy, for loopback and IPv6 TCP (UDP has sockets on the port itself);
//   interval maps, an element a run of host ports: 1-65535 is one element.
//     proxy4      meta l4proto . th dport              -> listener port  (127.0.0.0/8)
//     proxy4addr  ip daddr . meta l4proto . th dport   -> listener port  (127.0.0.1:8080:80)
//     proxy6      meta l4proto . th dport              -> listener port  (IPv6)
//     proxy6addr  ip6 daddr . meta l4proto . th dport  -> listener port  ([::1]:8080:80)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "portpub/publication.hpp"

namespace portpub {

enum class NatMap : std::uint8_t {
    wildcard4,
    bound4,
    proxy4,
    proxy4addr,
    proxy6,
    proxy6addr,
    wildcard6,
    bound6
};
inline constexpr NatMap kNatMaps[] = {NatMap::wildcard4,  NatMap::bound4, NatMap::proxy4,
                                      NatMap::proxy4addr, NatMap::proxy6, NatMap::proxy6addr,
                                      NatMap::wildcard6,  NatMap::bound6};

// Interval maps hold ranges: an element has a key and a key end.
bool is_interval(NatMap m);

struct NatElement {
    NatMap map = NatMap::wildcard4;
    std::array<std::uint8_t, 24> key{};
    std::array<std::uint8_t, 24> key_end{};  // interval maps only: the range's last key
    std::uint8_t key_len = 0;
    std::array<std::uint8_t, 20> data{};  // IPv6 address . port at most
    std::uint8_t data_len = 0;

    std::vector<std::uint8_t> key_bytes() const { return {key.begin(), key.begin() + key_len}; }
    friend bool operator==(const NatElement&, const NatElement&) = default;
};

const char* map_name(NatMap m);

// Kernel DNAT for port `offset` of a mapping the kernel serves, to the
// container's address of the same family (IPv4: pub4 and pub4addr; IPv6:
// pub6 and pub6addr).
NatElement dnat_element(const Mapping& m, std::uint32_t offset, const IpAddress& container);

// The container address a DNAT element (pub4, pub4addr, pub6, pub6addr)
// leads to; nullopt for a proxy redirect.
std::optional<IpAddress> dnat_target(const NatElement& e);

// Every element of a publication: DNAT for what the kernel serves, and, when
// it has a proxy, the redirects of its TCP port runs to the proxy's listeners.
std::vector<NatElement> nat_elements(const Publication& p);

// "tcp 0.0.0.0:8080 -> 10.77.0.2:80", "tcp 127.0.0.1:8000-8010 -> proxy port 40123".
std::string describe(const NatElement& e);
// The element's key as `nft` writes it: "tcp . 8080", "127.0.0.1 . tcp . 8000-8010".
std::string nft_key(const NatElement& e);

}  // namespace portpub
