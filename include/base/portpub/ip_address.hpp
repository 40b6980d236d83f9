// IPv4/IPv6 addresses and prefixes as plain values (no kernel involved).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portpub {

enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

class IpAddress {
  public:
    IpAddress() = default;  // 0.0.0.0

    // Parses a literal address without brackets; nullopt if it is not one.
    static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress v4(std::uint32_t host_order);
    static IpAddress from_bytes(Family family, const std::uint8_t* bytes);

    Family family() const { return family_; }
    bool is_v4() const { return family_ == Family::v4; }
    std::size_t size() const { return is_v4() ? 4 : 16; }
    const std::uint8_t* data() const { return bytes_.data(); }
    std::uint32_t v4_value() const;  // host byte order; only for IPv4
    // The address `n` further on, wrapping within its family.
    IpAddress plus(std::uint64_t n) const;

    bool is_unspecified() const;  // 0.0.0.0 or ::
    bool is_loopback() const;     // 127.0.0.0/8 or ::1

    std::string str() const;      // 192.0.2.1, 2001:db8::1
    std::string url_str() const;  // 192.0.2.1, [2001:db8::1]

    friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

  private:
    Family family_ = Family::v4;
    std::array<std::uint8_t, 16> bytes_{};
};

// An address with a prefix length, e.g. 10.77.0.0/16.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4; others unchanged.
IpAddress unmapped(const IpAddress& a);

struct Cidr {
    IpAddress address;
    int prefix = 0;

    // Parses "addr/len". Host bits may be set; see is_network().
    static std::optional<Cidr> parse(std::string_view text);

    IpAddress network() const;  // host bits cleared
    IpAddress last() const;     // host bits set (the IPv4 broadcast address)
    bool is_network() const { return network() == address; }
    bool contains(const IpAddress& a) const;
    bool overlaps(const Cidr& other) const;
    std::string str() const;

    friend auto operator<=>(const Cidr&, const Cidr&) = default;
};

}  // namespace portpub
