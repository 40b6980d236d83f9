// What the host says about its ports, read from the kernel: the local port range and reserved
// ports from /proc/sys, listeners and bound sockets from a sock_diag dump, the process holding
// a socket from /proc, and the addresses and broadcast addresses of the interfaces.
#include "portpub/host_ports.hpp"

#include <net/if.h>
#include <netinet/in.h>

#include <dirent.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "portpub/proxy_plan.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

std::optional<unsigned> to_number(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > 65535) return std::nullopt;
    return v;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Does a socket bound to `bound` receive traffic for `ip` (nullopt: every address)?
bool receives(const IpAddress& bound, const std::optional<IpAddress>& ip) {
    if (!ip || bound.is_unspecified() || ip->is_unspecified()) return true;
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

BoundSocket decode_diag_message(const void* raw, Proto proto) {
    const auto* msg = static_cast<const inet_diag_msg*>(raw);
    BoundSocket s;
    s.proto = proto;
    // idiag_src holds the address in network byte order, as IpAddress keeps it.
    s.address = IpAddress::from_bytes(msg->idiag_family == AF_INET6 ? Family::v6 : Family::v4,
                                      reinterpret_cast<const std::uint8_t*>(msg->id.idiag_src));
    s.port = ntohs(msg->id.idiag_sport);
    s.inode = msg->idiag_inode;
    s.time_wait = proto == Proto::tcp && msg->idiag_state == TCP_TIME_WAIT;
    return s;
}

std::vector<BoundSocket> dump_bound_sockets(bool any_tcp_state) {
    std::vector<BoundSocket> out;
    mnl_socket* nl = mnl_socket_open(NETLINK_SOCK_DIAG);
    if (!nl) return out;  // no sock_diag: no check, as before the kernel had it
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> guard(nl, mnl_socket_close);
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return out;
    std::vector<char> buf(64 * 1024);
    std::uint32_t seq = 0;
    for (auto [proto, family] : {std::pair{Proto::tcp, AF_INET},
                                 {Proto::tcp, AF_INET6},
                                 {Proto::udp, AF_INET},
                                 {Proto::udp, AF_INET6}}) {
        auto* nlh = mnl_nlmsg_put_header(buf.data());
        nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        nlh->nlmsg_seq = ++seq;
        auto* req = static_cast<inet_diag_req_v2*>(
            mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
        req->sdiag_family = static_cast<std::uint8_t>(family);
        req->sdiag_protocol = proto == Proto::tcp ? IPPROTO_TCP : IPPROTO_UDP;
        // TCP: listeners only (TCP_LISTEN is 10); UDP: every socket holds its port.
        req->idiag_states = proto == Proto::tcp && !any_tcp_state ? (1u << 10) : ~0u;
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) continue;
        struct Sink {
            std::vector<BoundSocket>* out;
            Proto proto;
        } sink{&out, proto};
        auto collect = [](const nlmsghdr* msg, void* data) -> int {
            auto* sink = static_cast<Sink*>(data);
            if (mnl_nlmsg_get_payload_len(msg) >= sizeof(inet_diag_msg))
                sink->out->push_back(decode_diag_message(mnl_nlmsg_get_payload(msg), sink->proto));
            return MNL_CB_OK;
        };
        for (;;) {
            ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
            if (n <= 0) break;
            int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq,
                                mnl_socket_get_portid(nl), collect, &sink);
            if (rc <= MNL_CB_STOP) break;
        }
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
    return std::make_shared<const HostSockets>(dump_bound_sockets());
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

std::vector<IpAddress> host_broadcast_addresses() {
    std::vector<IpAddress> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    // The last address of each network, whether or not the interface was
    // given a broadcast address (`ip addr add` gives none without `brd +`).
    for (auto* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !i->ifa_netmask || i->ifa_addr->sa_family != AF_INET) continue;
        auto v4 = [](sockaddr* sa) {
            return IpAddress::from_bytes(
                Family::v4,
                reinterpret_cast<std::uint8_t*>(&reinterpret_cast<sockaddr_in*>(sa)->sin_addr));
        };
        const int prefix = __builtin_popcount(v4(i->ifa_netmask).v4_value());
        if (prefix <= 30) out.push_back(Cidr{v4(i->ifa_addr), prefix}.last());
        if ((i->ifa_flags & IFF_BROADCAST) && i->ifa_broadaddr) out.push_back(v4(i->ifa_broadaddr));
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
        if (ip.is_v4() && ip.is_loopback()) return true;  // lo answers all of 127.0.0.0/8
        return std::find(addresses->begin(), addresses->end(), ip) != addresses->end();
    };
    return facts;
}

}  // namespace portpub
