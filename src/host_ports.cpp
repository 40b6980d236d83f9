#include "portpub/host_ports.hpp"

#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

std::optional<unsigned> to_number(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > 65535) return std::nullopt;
    return v;
}

std::optional<std::uint32_t> hex32(std::string_view s) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// /proc/net writes addresses as 32-bit words in host (little-endian) order.
std::optional<IpAddress> proc_address(std::string_view hex, bool v6) {
    if (hex.size() != (v6 ? 32u : 8u)) return std::nullopt;
    std::uint8_t bytes[16];
    for (std::size_t word = 0; word < hex.size() / 8; ++word) {
        auto w = hex32(hex.substr(word * 8, 8));
        if (!w) return std::nullopt;
        std::memcpy(bytes + word * 4, &*w, 4);  // back to the kernel's memory order
    }
    return IpAddress::from_bytes(v6 ? Family::v6 : Family::v4, bytes);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool is_unspecified_or_mapped_any(const IpAddress& a) {
    return a.is_unspecified();
}

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4.
IpAddress unmapped(const IpAddress& a) {
    static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!a.is_v4() && std::memcmp(a.data(), prefix, 12) == 0)
        return IpAddress::from_bytes(Family::v4, a.data() + 12);
    return a;
}

// Does a socket bound to `bound` receive traffic for `ip` (nullopt: every address)?
bool receives(const IpAddress& bound, const std::optional<IpAddress>& ip) {
    if (!ip || is_unspecified_or_mapped_any(bound) || ip->is_unspecified()) return true;
    return unmapped(bound) == unmapped(*ip);
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

std::vector<BoundSocket> parse_proc_net(std::string_view text, Proto proto, bool v6) {
    std::vector<BoundSocket> out;
    std::size_t at = text.find('\n');  // skip the header line
    while (at != std::string_view::npos && at + 1 < text.size()) {
        auto next = text.find('\n', at + 1);
        std::istringstream line(std::string(text.substr(at + 1, next - at - 1)));
        at = next;
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
        if (!(line >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
              timeout >> inode))
            continue;
        if (proto == Proto::tcp && state != "0A") continue;  // TCP_LISTEN
        auto colon = local.find(':');
        if (colon == std::string::npos) continue;
        auto address = proc_address(std::string_view(local).substr(0, colon), v6);
        auto port = hex32(std::string_view(local).substr(colon + 1));
        std::uint64_t ino = 0;
        std::from_chars(inode.data(), inode.data() + inode.size(), ino);
        if (!address || !port || *port > 65535) continue;
        out.push_back({proto, *address, static_cast<std::uint16_t>(*port), ino});
    }
    return out;
}

HostSockets::HostSockets(std::vector<BoundSocket> sockets) : sockets_(std::move(sockets)) {
    for (auto& bits : any_port_)
        bits.assign(65536, false);
    for (const auto& s : sockets_)
        any_port_[s.proto == Proto::tcp ? 0 : 1][s.port] = true;
}

std::shared_ptr<const HostSockets> HostSockets::read() {
    std::vector<BoundSocket> all;
    for (auto [file, proto, v6] : {std::tuple{"tcp", Proto::tcp, false},
                                   {"tcp6", Proto::tcp, true},
                                   {"udp", Proto::udp, false},
                                   {"udp6", Proto::udp, true}}) {
        auto found = parse_proc_net(read_text(std::string("/proc/net/") + file), proto, v6);
        all.insert(all.end(), found.begin(), found.end());
    }
    return std::make_shared<const HostSockets>(std::move(all));
}

const BoundSocket* HostSockets::holder(const std::optional<IpAddress>& ip, Proto proto,
                                       std::uint16_t port) const {
    if (proto == Proto::sctp)
        return nullptr;  // not listed in /proc/net; the kernel path needs no socket
    if (!any_port_[proto == Proto::tcp ? 0 : 1][port]) return nullptr;
    for (const auto& s : sockets_)
        if (s.proto == proto && s.port == port && receives(s.address, ip)) return &s;
    return nullptr;
}

std::string socket_owner(std::uint64_t inode) {
    if (inode == 0) return "";
    const std::string wanted = "socket:[" + std::to_string(inode) + "]";
    DIR* proc = ::opendir("/proc");
    if (!proc) return "";
    std::string found;
    while (auto* entry = ::readdir(proc)) {
        if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
        const std::string pid = entry->d_name;
        DIR* fds = ::opendir(("/proc/" + pid + "/fd").c_str());
        if (!fds) continue;
        while (auto* fd = ::readdir(fds)) {
            char target[64];
            auto n = ::readlinkat(::dirfd(fds), fd->d_name, target, sizeof target - 1);
            if (n <= 0) continue;
            if (std::string_view(target, static_cast<std::size_t>(n)) == wanted) {
                auto comm = read_text("/proc/" + pid + "/comm");
                while (!comm.empty() && comm.back() == '\n')
                    comm.pop_back();
                found = comm + " (pid " + pid + ")";
                break;
            }
        }
        ::closedir(fds);
        if (!found.empty()) break;
    }
    ::closedir(proc);
    return found;
}

std::vector<IpAddress> host_addresses() {
    std::vector<IpAddress> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (auto* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            auto* sa = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
            out.push_back(
                IpAddress::from_bytes(Family::v4, reinterpret_cast<std::uint8_t*>(&sa->sin_addr)));
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            auto* sa = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
            out.push_back(
                IpAddress::from_bytes(Family::v6, reinterpret_cast<std::uint8_t*>(&sa->sin6_addr)));
        }
    }
    ::freeifaddrs(list);
    return out;
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
    auto sockets = HostSockets::read();
    facts.in_use = [sockets](const std::optional<IpAddress>& ip, Proto proto, std::uint16_t port) {
        return sockets->holder(ip, proto, port) != nullptr;
    };
    facts.holder = [sockets](const std::optional<IpAddress>& ip, Proto proto, std::uint16_t port) {
        const BoundSocket* s = sockets->holder(ip, proto, port);
        if (!s) return std::string();
        std::string what = s->address.url_str() + ":" + std::to_string(s->port);
        auto owner = socket_owner(s->inode);
        return owner.empty() ? "a socket on " + what : owner + " on " + what;
    };
    auto addresses = std::make_shared<std::vector<IpAddress>>(host_addresses());
    facts.is_local = [addresses](const IpAddress& ip) {
        return std::find(addresses->begin(), addresses->end(), ip) != addresses->end();
    };
    return facts;
}

}  // namespace portpub
