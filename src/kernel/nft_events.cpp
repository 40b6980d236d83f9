// Subscribes a netlink socket to NFNLGRP_NFTABLES and reads its messages.
// Every nftables transaction ends with an NFT_MSG_NEWGEN message whose
// NFTA_GEN_PROC_PID names the process that committed it: that is all the
// watcher needs, since it looks at the whole state anyway. The socket is
// non-blocking; a queue that overflowed (ENOBUFS) lost announcements, and
// counts as a change.
#include "portpub/nft_events.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "portpub/error.hpp"

namespace portpub {

NftEvents::NftEvents() {
    nl_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!nl_) throw_errno("cannot open a netfilter netlink socket");
    if (mnl_socket_bind(nl_, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
        const int err = errno;
        mnl_socket_close(nl_);
        nl_ = nullptr;
        throw_errno("cannot subscribe to the nftables announcements", err);
    }
    // Bursts (a flush of a large ruleset) must not overflow it.
    int size = 4 * 1024 * 1024;
    ::setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
}

NftEvents::~NftEvents() {
    if (nl_) mnl_socket_close(nl_);
}

int NftEvents::fd() const {
    return mnl_socket_get_fd(nl_);
}

bool NftEvents::drain() {
    bool changed = false;
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    const auto self = static_cast<std::uint32_t>(::getpid());
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {
                changed = true;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return changed;
            throw_errno("cannot read the nftables announcements");
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWGEN) continue;
            std::uint32_t pid = 0;
            mnl_attr_parse(
                nlh, sizeof(nfgenmsg),
                [](const nlattr* attr, void* out) -> int {
                    if (mnl_attr_get_type(attr) == NFTA_GEN_PROC_PID &&
                        mnl_attr_get_payload_len(attr) == sizeof(std::uint32_t))
                        *static_cast<std::uint32_t*>(out) = ntohl(mnl_attr_get_u32(attr));
                    return MNL_CB_OK;
                },
                &pid);
            if (pid != self) changed = true;
        }
    }
}

}  // namespace portpub
