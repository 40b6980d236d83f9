// IPv4 and IPv6 addresses and prefixes as values: parsed and printed through the C library,
// prefix arithmetic (network, last address, containment, overlap), and IPv4-mapped IPv6
// addresses read as IPv4.
#include "portpub/ip_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace portpub {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string and accepts nothing but literals.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress a;
    if (::inet_pton(AF_INET, buf, a.bytes_.data()) == 1) {
        a.family_ = Family::v4;
        return a;
    }
    if (::inet_pton(AF_INET6, buf, a.bytes_.data()) == 1) {
        a.family_ = Family::v6;
        return a;
    }
    return std::nullopt;
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
    IpAddress a;
    a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes_[3] = static_cast<std::uint8_t>(host_order);
    return a;
}

IpAddress IpAddress::from_bytes(Family family, const std::uint8_t* bytes) {
    IpAddress a;
    a.family_ = family;
    std::memcpy(a.bytes_.data(), bytes, a.size());
    return a;
}

std::uint32_t IpAddress::v4_value() const {
    return (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) |
           (std::uint32_t{bytes_[2]} << 8) | std::uint32_t{bytes_[3]};
}

IpAddress IpAddress::plus(std::uint64_t n) const {
    IpAddress out = *this;
    for (std::size_t i = size(); i-- > 0 && n != 0;) {  // big-endian, from the last byte
        const std::uint64_t sum = out.bytes_[i] + (n & 0xff);
        out.bytes_[i] = static_cast<std::uint8_t>(sum);
        n = (n >> 8) + (sum >> 8);
    }
    return out;
}

bool IpAddress::is_unspecified() const {
    for (std::size_t i = 0; i < size(); ++i)
        if (bytes_[i] != 0) return false;
    return true;
}

bool IpAddress::is_loopback() const {
    if (is_v4()) return bytes_[0] == 127;
    for (std::size_t i = 0; i < 15; ++i)
        if (bytes_[i] != 0) return false;
    return bytes_[15] == 1;
}

std::string IpAddress::str() const {
    char buf[INET6_ADDRSTRLEN];
    ::inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
    return buf;
}

std::string IpAddress::url_str() const {
    return is_v4() ? str() : "[" + str() + "]";
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto addr = IpAddress::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    auto len = text.substr(slash + 1);
    int prefix = -1;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
    if (len.empty() || ec != std::errc{} || end != len.data() + len.size()) return std::nullopt;
    if (prefix < 0 || prefix > static_cast<int>(addr->size() * 8)) return std::nullopt;
    return Cidr{*addr, prefix};
}

namespace {

// Copies `a` with every bit past `prefix` cleared (set == false) or set.
IpAddress with_host_bits(const IpAddress& a, int prefix, bool set) {
    std::uint8_t bytes[16];
    std::memcpy(bytes, a.data(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        int keep = prefix - static_cast<int>(i) * 8;  // leading bits of this byte to keep
        std::uint8_t mask = keep >= 8   ? 0xff
                            : keep <= 0 ? 0
                                        : static_cast<std::uint8_t>(0xff << (8 - keep));
        bytes[i] = set ? (bytes[i] | static_cast<std::uint8_t>(~mask)) : (bytes[i] & mask);
    }
    return IpAddress::from_bytes(a.family(), bytes);
}

}  // namespace

IpAddress Cidr::network() const {
    return with_host_bits(address, prefix, false);
}
IpAddress Cidr::last() const {
    return with_host_bits(address, prefix, true);
}

bool Cidr::contains(const IpAddress& a) const {
    return a.family() == address.family() && with_host_bits(a, prefix, false) == network();
}

bool Cidr::overlaps(const Cidr& other) const {
    if (other.address.family() != address.family()) return false;
    // Two prefixes overlap exactly when the shorter one contains the other's network.
    return prefix <= other.prefix ? contains(other.address) : other.contains(address);
}

std::string Cidr::str() const {
    return address.str() + "/" + std::to_string(prefix);
}

IpAddress unmapped(const IpAddress& a) {
    static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!a.is_v4() && std::memcmp(a.data(), prefix, 12) == 0)
        return IpAddress::from_bytes(Family::v4, a.data() + 12);
    return a;
}

}  // namespace portpub
