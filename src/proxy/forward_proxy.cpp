// The forward proxy, both sides: `portpub forward` makes the loopback listeners of every remote
// TCP forward and starts `portpub forward-proxy` with them; the process matches each listener
// it inherits to its route by port and relays accepted connections through a RelaySet.
#include "portpub/forward_proxy.hpp"

#include <netinet/in.h>

#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <map>
#include <memory>

#include "portpub/error.hpp"
#include "portpub/logger.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_sockets.hpp"
#include "portpub/relay_set.hpp"

namespace portpub {

namespace {

constexpr std::size_t kSpareFds = 64;
constexpr int kBurst = 64;

// A listener on a loopback address, or an empty fd when that family is off
// on this host (no ::1).
UniqueFd listen_on(const IpAddress& a, std::uint16_t port) {
    UniqueFd fd(
        ::socket(a.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        if (!a.is_v4() && errno == EAFNOSUPPORT) return {};
        throw_errno("cannot create a socket for the forward proxy");
    }
    int one = 1;
    // Connections of an earlier proxy in TIME_WAIT must not keep the port.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!a.is_v4()) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    const socklen_t len = socket_address(ss, a, port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        const int err = errno;
        if (!a.is_v4() && err == EADDRNOTAVAIL) return {};  // IPv6 is off
        throw Error("cannot listen on " + a.url_str() + ":" + std::to_string(port) +
                    " for the forward proxy: " + errno_text(err) +
                    (err == EADDRINUSE ? " (a program of this host uses that port on loopback: "
                                         "stop it or choose another host port)"
                                       : ""));
    }
    if (::listen(fd.get(), 4096) != 0) throw_errno("cannot listen on " + a.url_str());
    return fd;
}

// ---- the proxy process ----

class Proxy;

struct Listener : EpollWatch {
    Proxy& proxy;
    UniqueFd fd;
    ProxyRoute route;
    Listener(Proxy& p, UniqueFd f, ProxyRoute r) : proxy(p), fd(std::move(f)), route(r) {}
    void on(std::uint32_t) override;
};

class Proxy {
  public:
    explicit Proxy(Logger& log)
        : log_(log), epoll_(::epoll_create1(EPOLL_CLOEXEC)), relays_(epoll_.get(), log) {
        if (!epoll_) throw_errno("epoll_create1");
    }

    void listen(UniqueFd fd, const ProxyRoute& route) {
        auto l = std::make_unique<Listener>(*this, std::move(fd), route);
        add(l->fd.get(), EPOLLIN, l.get());
        keep_.push_back(std::move(l));
    }

    int run(int ready_fd) {
        auto sig = std::make_unique<Callback>(stop_signals(), [this](int fd) {
            drain_signals(fd);
            running_ = false;
        });
        add(sig->fd.get(), EPOLLIN, sig.get());
        keep_.push_back(std::move(sig));
        log_.write("forward proxy started (pid " + std::to_string(::getpid()) + ", " +
                   std::to_string(keep_.size() - 1) + " listeners)");
        (void)!::write(ready_fd, "ready\n", 6);
        ::close(ready_fd);
        if (run_epoll(epoll_.get(), running_, log_, [this] { relays_.end_batch(); }) != 0) return 1;
        log_.write("forward proxy stops");
        return 0;
    }

    void accept_from(Listener& l) {
        for (int i = 0; i < kBurst; ++i) {
            UniqueFd client(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!client) return;  // EAGAIN, or out of descriptors: the queue waits
            relays_.start(std::move(client), l.route.to, l.route.to_port);
        }
    }

  private:
    void add(int fd, std::uint32_t events, EpollWatch* w) {
        epoll_add(epoll_.get(), fd, events, w);
    }

    Logger& log_;
    UniqueFd epoll_;
    bool running_ = true;
    std::vector<std::unique_ptr<EpollWatch>> keep_;
    RelaySet relays_;
};

void Listener::on(std::uint32_t) {
    proxy.accept_from(*this);
}

}  // namespace

std::filesystem::path forward_proxy_log(const std::filesystem::path& state_dir) {
    return log_path(state_dir, "_forwards");
}

ProcessId start_forward_proxy(const std::vector<ProxyRoute>& routes,
                              const std::filesystem::path& state_dir) {
    const auto limit = raise_fd_limit();
    if (routes.size() * 2 + kSpareFds > limit)
        throw Error("remote TCP forwards of " + std::to_string(routes.size()) + " ports need " +
                    std::to_string(routes.size() * 2) +
                    " loopback listeners, over the file descriptor limit " + std::to_string(limit) +
                    "; forward fewer ports");
    std::vector<UniqueFd> listeners;
    const auto v4 = *IpAddress::parse("127.0.0.1"), v6 = *IpAddress::parse("::1");
    for (const auto& r : routes) {
        listeners.push_back(listen_on(v4, r.port));
        if (auto fd = listen_on(v6, r.port)) listeners.push_back(std::move(fd));
    }
    auto ready = ready_pipe("forward proxy");
    std::vector<std::string> args{"/proc/self/exe", "forward-proxy",
                                  "--state-dir",    state_dir.string(),
                                  "--ready-fd",     std::to_string(ready.write.get())};
    for (const auto& r : routes) {
        args.push_back("--route");
        args.push_back(route_text(r));
    }
    std::vector<int> keep;
    for (const auto& l : listeners)
        keep.push_back(l.get());
    return start_detached(args, std::move(keep), std::move(ready), "forward proxy");
}

int run_forward_proxy(const std::vector<std::string>& args) {
    namespace po = boost::program_options;
    po::options_description opts;
    opts.add_options()("state-dir", po::value<std::string>()->required(), "")(
        "ready-fd", po::value<int>()->required(), "")(
        "route", po::value<std::vector<std::string>>()->composing(), "");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    const int ready_fd = vm["ready-fd"].as<int>();
    become_proxy();
    try {
        std::map<std::uint16_t, ProxyRoute> routes;
        if (vm.count("route"))
            for (const auto& text : vm["route"].as<std::vector<std::string>>()) {
                const auto r = parse_route(text);
                routes[r.port] = r;
            }
        // Every other open descriptor is a listener the parent made.
        const std::vector<int> inherited = inherited_fds(ready_fd);
        Logger log(forward_proxy_log(vm["state-dir"].as<std::string>()));
        raise_fd_limit();
        Proxy proxy(log);
        for (int fd : inherited) {
            auto it = routes.find(local_port(fd));
            if (it == routes.end()) {
                ::close(fd);
                continue;
            }
            proxy.listen(UniqueFd(fd), it->second);
        }
        return proxy.run(ready_fd);
    } catch (const std::exception& e) {
        return report_start_failure(ready_fd, e);
    }
}

}  // namespace portpub
