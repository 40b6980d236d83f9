#include "portpub/host_ports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <bitset>
#include <charconv>
#include <cstring>
#include <memory>

#include "portpub/fd.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

std::optional<unsigned> to_number(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > 65535) return std::nullopt;
    return v;
}

}  // namespace

std::function<bool(std::uint16_t)> parse_reserved_ports(const std::string& text) {
    auto bits = std::make_shared<std::bitset<65536>>();
    std::string_view rest = text;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        auto dash = item.find('-');
        auto first = to_number(item.substr(0, dash));
        auto last = dash == std::string_view::npos ? first : to_number(item.substr(dash + 1));
        if (!first || !last) continue;  // the kernel wrote it; skip what we cannot read
        for (unsigned p = *first; p <= *last; ++p)
            bits->set(p);
    }
    return [bits](std::uint16_t p) { return bits->test(p); };
}

HostPortFacts read_host_port_facts() {
    HostPortFacts facts;
    if (auto range = read_sysctl("net/ipv4/ip_local_port_range")) {
        auto tab = range->find_first_of(" \t");
        if (tab != std::string::npos) {
            auto first = to_number(range->substr(0, tab));
            auto rest = range->substr(tab);
            rest.erase(0, rest.find_first_not_of(" \t"));
            auto last = to_number(rest);
            if (first && last && *first >= 1 && *first <= *last)
                facts.ephemeral = {static_cast<std::uint16_t>(*first),
                                   static_cast<std::uint16_t>(*last)};
        }
    }
    facts.reserved =
        parse_reserved_ports(read_sysctl("net/ipv4/ip_local_reserved_ports").value_or(""));
    facts.in_use = port_in_use;
    return facts;
}

bool port_in_use(const std::optional<IpAddress>& ip, Proto proto, std::uint16_t port) {
    if (proto == Proto::sctp) return false;  // no cheap probe; the kernel path needs no socket
    const bool v6 = ip && !ip->is_v4();
    UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET,
                         (proto == Proto::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    int one = 1;
    // Only a socket that holds the port counts, not a connection in TIME_WAIT.
    if (proto == Proto::tcp) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        std::memcpy(&sa.sin6_addr, ip->data(), 16);
        rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        if (ip) std::memcpy(&sa.sin_addr, ip->data(), 4);
        rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    return rc != 0 && errno == EADDRINUSE;
}

}  // namespace portpub
