// pp-echo: the service inside test containers. For each TCP connection it
// reads one line and answers "<name> <peer-address> <line>"; for each UDP
// datagram it answers "<name> <peer-address> <payload>" from the address the
// datagram was sent to. The peer address lets a test check that the client's
// own address arrives (no masquerade on the kernel path).
// On --echo-tcp ports it sends back every byte until the client's end of
// file, then ends its own side (one child process a connection); on
// --echo-udp ports every datagram comes back as it is. On --hello-tcp ports
// it writes "hello" and closes each connection at once (for connection rates).
//
//   pp-echo NAME [--tcp PORT]... [--udp PORT]... [--echo-tcp PORT]... [--echo-udp PORT]...
// Prints "ready" on stdout once every socket is bound, then serves until killed.
#include <netinet/in.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// IPv4 and IPv6 on one socket ([::], not IPv6-only); IPv4 alone where the
// namespace has no IPv6.
int bound_socket(int type, int port) {
    int one = 1, zero = 0;
    int fd = ::socket(AF_INET6, type | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (fd >= 0) {
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *sa;
    } else {
        fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *sa;
    }
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        std::perror("pp-echo: bind");
        std::exit(1);
    }
    if (type == SOCK_STREAM) ::listen(fd, 4096);
    return fd;
}

// 192.0.2.2 for an IPv4 client (also when it came as ::ffff:192.0.2.2), 2001:db8::2 for IPv6.
std::string peer_text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    } else {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a))
            ::inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
        else
            ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
    }
    return buf;
}

void serve_tcp(int listener, const std::string& name) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) return;
    timeval tv{2, 0};  // a client that never sends must not stall the server
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char c;
    while (line.size() < 4096 && ::read(fd, &c, 1) == 1 && c != '\n')
        line += c;
    std::string reply = name + " " + peer_text(peer) + " " + line + "\n";
    (void)!::write(fd, reply.data(), reply.size());
    ::close(fd);
}

// A whole connection echoed back, in a child of its own.
void serve_echo_tcp(int listener) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    if (::fork() != 0) {
        ::close(fd);
        return;
    }
    static char buf[256 * 1024];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        for (ssize_t done = 0; done < n;) {
            ssize_t w = ::write(fd, buf + done, static_cast<size_t>(n - done));
            if (w <= 0) ::_exit(1);
            done += w;
        }
    }
    ::shutdown(fd, SHUT_WR);  // the client's end of file, passed back after the data
    ::_exit(0);
}

void serve_hello(int listener) {
    for (int i = 0; i < 64; ++i) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        (void)!::write(fd, "hello\n", 6);
        ::close(fd);
    }
}

void serve_echo_udp(int fd) {
    static char buf[65536];
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n >= 0)
        ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
}

void serve_udp(int fd, const std::string& name) {
    char buf[2048];
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) return;
    std::string reply =
        name + " " + peer_text(peer) + " " + std::string(buf, static_cast<size_t>(n));
    ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
}

}  // namespace

int main(int argc, char** argv) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test that started it
    if (argc < 2) {
        std::fprintf(stderr, "usage: pp-echo NAME [--tcp PORT]... [--udp PORT]...\n");
        return 2;
    }
    const std::string name = argv[1];
    ::signal(SIGCHLD, SIG_IGN);  // echo children reap themselves
    enum Kind { line_tcp, line_udp, echo_tcp, echo_udp, hello_tcp };
    std::vector<pollfd> fds;
    std::vector<Kind> kinds;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string opt = argv[i];
        const Kind k = opt == "--tcp"         ? line_tcp
                       : opt == "--udp"       ? line_udp
                       : opt == "--echo-tcp"  ? echo_tcp
                       : opt == "--hello-tcp" ? hello_tcp
                                              : echo_udp;
        const bool stream = k == line_tcp || k == echo_tcp || k == hello_tcp;
        fds.push_back(
            {bound_socket(stream ? SOCK_STREAM : SOCK_DGRAM, std::atoi(argv[i + 1])), POLLIN, 0});
        kinds.push_back(k);
    }
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0) continue;
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!(fds[i].revents & POLLIN)) continue;
            switch (kinds[i]) {
                case line_tcp:
                    serve_tcp(fds[i].fd, name);
                    break;
                case line_udp:
                    serve_udp(fds[i].fd, name);
                    break;
                case echo_tcp:
                    serve_echo_tcp(fds[i].fd);
                    break;
                case echo_udp:
                    serve_echo_udp(fds[i].fd);
                    break;
                case hello_tcp:
                    ::fcntl(fds[i].fd, F_SETFL, O_NONBLOCK);
                    serve_hello(fds[i].fd);
                    break;
            }
        }
    }
}
