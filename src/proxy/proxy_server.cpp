// `portpub proxy`: the process that serves one container's loopback and IPv6 clients, TCP
// through the listeners nft redirects to, UDP on the published ports themselves.
//
// `up` makes every socket and starts the process with them and the publication in a memfd.
// The proxy sorts what it inherits: TCP listeners, UDP ports it serves, and holders it never
// reads, kept so that no other program binds a published port. One epoll loop serves them all.
// An accepted connection's destination before the redirect (SO_ORIGINAL_DST) names the
// container port, and a RelaySet relays it. Each client of a UDP port and address is a flow
// with its own socket connected to the container; replies leave from the address the client
// sent to. Flows live in an LRU table of 4096 and expire after --udp-timeout without traffic.
// A datagram to an address kernel DNAT serves is dropped: answering it would make a conntrack
// entry that keeps the client on this path. A 250 ms tick expires flows, wakes listeners paused
// for want of descriptors, and stops the proxy once the namespace file is gone or names another
// namespace; a stop signal, or the exit of the container's process when known, stops it too.
#include "portpub/proxy_server.hpp"

#include <netinet/in.h>

#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/program_options.hpp>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string_view>

#include "portpub/error.hpp"
#include "portpub/logger.hpp"
#include "portpub/lru_table.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_sockets.hpp"
#include "portpub/relay_set.hpp"

namespace portpub {

namespace {

constexpr std::size_t kMaxFlows = 4096;  // UDP flows; the oldest leaves for a new one
constexpr int kTickMs = 250;             // namespace watch and flow expiry
constexpr int kBurst = 64;               // datagrams or connections per wake-up

std::uint64_t now_ms() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1000 +
           static_cast<std::uint64_t>(t.tv_nsec) / 1000000;
}

IpAddress address_of(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET)
        return IpAddress::from_bytes(Family::v4,
                                     reinterpret_cast<const std::uint8_t*>(
                                         &reinterpret_cast<const sockaddr_in&>(ss).sin_addr));
    return IpAddress::from_bytes(Family::v6,
                                 reinterpret_cast<const std::uint8_t*>(
                                     &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr));
}

std::uint16_t port_of(const sockaddr_storage& ss) {
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                         : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

std::string text(const IpAddress& a, std::uint16_t port) {
    return a.url_str() + ":" + std::to_string(port);
}

void reset_and_close(UniqueFd& fd) {
    set_linger_reset(fd.get());
    fd.reset();
}

class Proxy;

struct Listener : EpollWatch {
    Proxy& proxy;
    UniqueFd fd;
    bool v6;
    Listener(Proxy& p, UniqueFd f, bool is_v6) : proxy(p), fd(std::move(f)), v6(is_v6) {}
    void on(std::uint32_t) override;
};

struct UdpPort : EpollWatch {
    Proxy& proxy;
    UniqueFd fd;
    std::uint16_t port;
    UdpPort(Proxy& p, UniqueFd f, std::uint16_t pt) : proxy(p), fd(std::move(f)), port(pt) {}
    void on(std::uint32_t) override;
};

// A UDP flow: this port, the address the client sent to, the client.
struct FlowKey {
    const UdpPort* port = nullptr;
    std::array<std::uint8_t, 16> to{};
    std::array<std::uint8_t, sizeof(sockaddr_in6)> from{};  // as recvmsg wrote it, zero-padded
    bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
    std::size_t operator()(const FlowKey& k) const {
        auto bytes = [](const auto& a) {
            return std::hash<std::string_view>{}(
                std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
        };
        return std::hash<const void*>{}(k.port) ^ (bytes(k.to) * 31) ^ (bytes(k.from) * 131);
    }
};

struct Flow : EpollWatch {  // one client of one UDP port, with its own socket toward the container
    Proxy& proxy;
    UniqueFd fd;
    UdpPort& port;
    FlowKey key;
    sockaddr_storage client{};
    socklen_t client_len = 0;
    // IP_PKTINFO / IPV6_PKTINFO for replies: they leave from the address the
    // client sent to. Built once, when the flow starts.
    alignas(cmsghdr) char reply_control[64]{};
    std::size_t reply_control_len = 0;
    Flow(Proxy& p, UniqueFd f, UdpPort& pt) : proxy(p), fd(std::move(f)), port(pt) {}
    void reply_from(const sockaddr_storage& local, int ifindex);
    void on(std::uint32_t) override;
};

void Flow::reply_from(const sockaddr_storage& local, int ifindex) {
    cmsghdr* c = reinterpret_cast<cmsghdr*>(reply_control);
    if (local.ss_family == AF_INET) {
        in_pktinfo info{};
        info.ipi_spec_dst = reinterpret_cast<const sockaddr_in&>(local).sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        reply_control_len = CMSG_SPACE(sizeof info);
    } else {
        in6_pktinfo info{};
        info.ipi6_addr = reinterpret_cast<const sockaddr_in6&>(local).sin6_addr;
        info.ipi6_ifindex = static_cast<unsigned>(ifindex);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        reply_control_len = CMSG_SPACE(sizeof info);
    }
}

class Proxy {
  public:
    Proxy(Publication pub, Logger& log)
        : pub_(std::move(pub)),
          log_(log),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          relays_(epoll_.get(), log),
          flows_(kMaxFlows) {
        if (!epoll_) throw_errno("epoll_create1");
        udp_timeout_ms_ = std::uint64_t{pub_.proxy ? pub_.proxy->udp_timeout : 90} * 1000;
    }

    // An inherited socket: a TCP listener, a UDP port to serve, or a holder.
    void adopt(int raw) {
        UniqueFd fd(raw);
        int type = 0, listening = 0, domain = 0;
        socklen_t len = sizeof type;
        if (::getsockopt(raw, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return;  // not a socket
        len = sizeof listening;
        ::getsockopt(raw, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        len = sizeof domain;
        ::getsockopt(raw, SOL_SOCKET, SO_DOMAIN, &domain, &len);
        if (type == SOCK_STREAM && listening) {
            auto l = std::make_unique<Listener>(*this, std::move(fd), domain == AF_INET6);
            add(l->fd.get(), EPOLLIN, l.get());
            keep_.push_back(std::move(l));
        } else if (type == SOCK_DGRAM) {
            sockaddr_storage ss{};
            socklen_t sl = sizeof ss;
            ::getsockname(raw, reinterpret_cast<sockaddr*>(&ss), &sl);
            auto u = std::make_unique<UdpPort>(*this, std::move(fd), port_of(ss));
            add(u->fd.get(), EPOLLIN, u.get());
            keep_.push_back(std::move(u));
        } else {
            holders_.push_back(std::move(fd));  // held, never read
        }
    }

    void watch_container(int pidfd) {
        if (pidfd < 0) return;
        auto w = std::make_unique<Callback>(
            UniqueFd(pidfd), [this](int) { stop("the container's process exited"); });
        add(w->fd.get(), EPOLLIN, w.get());
        keep_.push_back(std::move(w));
    }

    int run(int ready_fd) {
        auto sig = std::make_unique<Callback>(stop_signals(), [this](int fd) {
            drain_signals(fd);
            stop("stopped by a signal");
        });
        add(sig->fd.get(), EPOLLIN, sig.get());
        keep_.push_back(std::move(sig));

        UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        itimerspec every{{0, kTickMs * 1000000L}, {0, kTickMs * 1000000L}};
        ::timerfd_settime(timer.get(), 0, &every, nullptr);
        auto tick = std::make_unique<Callback>(std::move(timer), [this](int fd) {
            std::uint64_t expirations = 0;
            (void)!::read(fd, &expirations, sizeof expirations);
            on_tick();
        });
        add(tick->fd.get(), EPOLLIN, tick.get());
        keep_.push_back(std::move(tick));

        log_.write("proxy for " + pub_.id + " started (pid " + std::to_string(::getpid()) + ", " +
                   std::to_string(holders_.size()) + " ports held)");
        const char ready[] = "ready\n";
        (void)!::write(ready_fd, ready, sizeof ready - 1);
        ::close(ready_fd);

        const auto after_batch = [this] {
            relays_.end_batch();
            dead_flows_.clear();
        };
        if (run_epoll(epoll_.get(), running_, log_, after_batch) != 0) return 1;
        log_.write("proxy for " + pub_.id + " exits: " + reason_);
        return 0;
    }

    void accept_from(Listener& l);
    void udp_in(UdpPort& p);
    void flow_in(Flow& f);

  private:
    void add(int fd, std::uint32_t events, EpollWatch* w) {
        epoll_add(epoll_.get(), fd, events, w);
    }
    void remove(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

    void stop(const std::string& why) {
        running_ = false;
        reason_ = why;
    }

    // Out of file descriptors: the listener would wake epoll again at once.
    // It sleeps until the next tick; waiting connections stay in its queue.
    void pause(Listener& l) {
        epoll_event ev{};
        ev.data.ptr = &l;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
        if (paused_.empty()) log_.write("out of file descriptors: new connections wait");
        paused_.push_back(&l);
    }

    void on_tick() {
        for (Listener* l : paused_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = l;
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l->fd.get(), &ev);
        }
        paused_.clear();
        // The namespace file gone, or naming another namespace: the container is gone.
        struct stat st {};
        if (::stat(pub_.netns.c_str(), &st) != 0 || st.st_ino != pub_.netns_inode) {
            stop("the container's network namespace is gone");
            return;
        }
        for (auto& [key, flow] : flows_.expire(now_ms(), udp_timeout_ms_))
            drop_flow(std::move(flow));
    }

    void drop_flow(std::unique_ptr<Flow> f) {
        remove(f->fd.get());
        dead_flows_.push_back(std::move(f));
    }

    Publication pub_;
    Logger& log_;
    UniqueFd epoll_;
    RelaySet relays_;
    bool running_ = true;
    std::string reason_;
    std::vector<std::unique_ptr<EpollWatch>> keep_;
    std::vector<UniqueFd> holders_;
    LruTable<FlowKey, std::unique_ptr<Flow>, FlowKeyHash> flows_;
    std::vector<std::unique_ptr<Flow>> dead_flows_;
    std::uint64_t udp_timeout_ms_;
    std::vector<Listener*> paused_;
    std::size_t refused_ = 0;
};

void Listener::on(std::uint32_t) {
    proxy.accept_from(*this);
}
void UdpPort::on(std::uint32_t) {
    proxy.udp_in(*this);
}
void Flow::on(std::uint32_t) {
    proxy.flow_in(*this);
}

void Proxy::accept_from(Listener& l) {
    for (int i = 0; i < kBurst; ++i) {
        UniqueFd client(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!client) {
            if (errno == EMFILE || errno == ENFILE) pause(l);
            return;
        }
        // Where the client meant to go, before nft redirected it here.
        sockaddr_storage dst{};
        socklen_t len = sizeof dst;
        const bool ok =
            l.v6 ? ::getsockopt(client.get(), SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0
                 : ::getsockopt(client.get(), SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0;
        std::optional<Endpoint> target;
        if (ok) target = proxy_target(pub_, Proto::tcp, address_of(dst), port_of(dst));
        if (!target) {
            if (refused_++ < 10)
                log_.write("refused a connection that was not for a published port");
            reset_and_close(client);
            continue;
        }
        relays_.start(std::move(client), target->address, target->port);
    }
}

void Proxy::udp_in(UdpPort& p) {
    static char buf[65536];
    for (int i = 0; i < kBurst; ++i) {
        sockaddr_storage from{};
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) char control[128];
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(p.fd.get(), &msg, 0);
        if (n < 0) return;  // EAGAIN: all read
        // The address the datagram was sent to: the reply must come from it.
        sockaddr_storage local{};
        int ifindex = 0;
        bool unicast = true;  // broadcast and multicast are not published ports' traffic
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                in_pktinfo info;
                std::memcpy(&info, CMSG_DATA(c), sizeof info);
                auto* sa = reinterpret_cast<sockaddr_in*>(&local);
                sa->sin_family = AF_INET;
                sa->sin_addr = info.ipi_addr;
                // For a datagram to one of our addresses the kernel's reply
                // address is that address; for broadcast and multicast not.
                unicast = info.ipi_addr.s_addr == info.ipi_spec_dst.s_addr;
            } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                in6_pktinfo info;
                std::memcpy(&info, CMSG_DATA(c), sizeof info);
                auto* sa = reinterpret_cast<sockaddr_in6*>(&local);
                sa->sin6_family = AF_INET6;
                sa->sin6_addr = info.ipi6_addr;
                ifindex = static_cast<int>(info.ipi6_ifindex);
                unicast = !IN6_IS_ADDR_MULTICAST(&info.ipi6_addr);
            }
        }
        if (!unicast) continue;
        if (local.ss_family == 0) {  // no pktinfo: the socket is bound to one address
            socklen_t len = sizeof local;
            ::getsockname(p.fd.get(), reinterpret_cast<sockaddr*>(&local), &len);
        }
        const IpAddress to = address_of(local);
        // IPv4 to other addresses than loopback is kernel DNAT's. A datagram
        // for one that reaches this socket came on a conntrack entry from
        // before the rules (`up` deletes those): answering it would make a
        // new entry, from the published port to the client, that keeps the
        // client on this path for as long as it keeps sending.
        // The same holds for IPv6 when the container has IPv6 itself.
        if (!to.is_loopback() && (to.is_v4() || pub_.address6)) continue;
        FlowKey key{&p};
        std::memcpy(key.to.data(), to.data(), to.size());
        std::memcpy(key.from.data(), &from,
                    std::min<std::size_t>(msg.msg_namelen, key.from.size()));
        const auto now = now_ms();
        Flow* flow = nullptr;
        if (auto* found = flows_.find(key, now)) flow = found->get();
        if (!flow) {
            auto target = proxy_target(pub_, Proto::udp, to, p.port);
            if (!target) continue;
            UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            sockaddr_storage dst{};
            socklen_t dst_len = socket_address(dst, target->address, target->port);
            if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&dst), dst_len) != 0) {
                log_.write("cannot reach " + text(target->address, target->port) + ": " +
                           errno_text(errno));
                continue;
            }
            auto f = std::make_unique<Flow>(*this, std::move(s), p);
            f->key = key;
            f->client = from;
            f->client_len = msg.msg_namelen;
            f->reply_from(local, ifindex);
            flow = f.get();
            add(flow->fd.get(), EPOLLIN, flow);
            if (auto evicted = flows_.insert(key, std::move(f), now))
                drop_flow(std::move(evicted->second));
        }
        (void)!::send(flow->fd.get(), buf, static_cast<std::size_t>(n), 0);
    }
}

void Proxy::flow_in(Flow& f) {
    static char buf[65536];
    for (int i = 0; i < kBurst; ++i) {
        ssize_t n = ::recv(f.fd.get(), buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == ECONNREFUSED)
                continue;  // an ICMP error from the container: nothing to pass on
            return;
        }
        flows_.find(f.key, now_ms());  // replies keep a flow alive too
        iovec iov{buf, static_cast<std::size_t>(n)};
        msghdr msg{};
        msg.msg_name = &f.client;
        msg.msg_namelen = f.client_len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = f.reply_control;
        msg.msg_controllen = f.reply_control_len;
        (void)!::sendmsg(f.port.fd.get(), &msg, 0);
    }
}

// The container's pid, when the namespace was given as /proc/PID/ns/net.
int container_pidfd(const std::string& netns) {
    static const std::regex proc(R"(/proc/([0-9]+)/ns/net)");
    std::smatch m;
    if (!std::regex_match(netns, m, proc)) return -1;
    return pidfd_open(std::stoi(m[1].str()));
}

std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

int run_proxy(const std::vector<std::string>& args) {
    namespace po = boost::program_options;
    po::options_description opts;
    opts.add_options()("state-dir", po::value<std::string>()->required(), "")(
        "id", po::value<std::string>()->required(), "")(
        "publication-fd", po::value<int>()->required(), "")("ready-fd",
                                                            po::value<int>()->required(), "");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    const int ready_fd = vm["ready-fd"].as<int>();
    const int record_fd = vm["publication-fd"].as<int>();
    become_proxy();
    try {
        Publication pub =
            from_record(nlohmann::json::parse(read_all(record_fd)), "the publication from up");
        ::close(record_fd);
        // Every other open descriptor is a socket `up` made for this proxy:
        // listed before this process opens any of its own.
        const std::vector<int> inherited = inherited_fds(ready_fd);
        Logger log(log_path(vm["state-dir"].as<std::string>(), pub.id));
        raise_fd_limit();
        const std::string netns = pub.netns;
        Proxy proxy(std::move(pub), log);
        for (int fd : inherited)
            proxy.adopt(fd);
        proxy.watch_container(container_pidfd(netns));
        return proxy.run(ready_fd);
    } catch (const std::exception& e) {
        return report_start_failure(ready_fd, e);
    }
}

}  // namespace portpub
