// A libnl route socket in the link and address groups, non-blocking and
// without sequence checks (announcements carry none). Each message is judged
// by its type alone: RTM_DELADDR and RTM_DELLINK count, and so does a queue
// that overflowed.
#include "portpub/link_events.hpp"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "portpub/error.hpp"

namespace portpub {

LinkEvents::LinkEvents() {
    sk_ = nl_socket_alloc();
    if (!sk_) throw Error("cannot allocate a route netlink socket");
    nl_socket_disable_seq_check(sk_);
    int err = nl_connect(sk_, NETLINK_ROUTE);
    if (err == 0)
        err = nl_socket_add_memberships(sk_, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
                                        0);
    if (err == 0) err = nl_socket_set_nonblocking(sk_);
    if (err < 0) {
        nl_socket_free(sk_);
        sk_ = nullptr;
        throw Error(std::string("cannot subscribe to the link announcements: ") + nl_geterror(err));
    }
    nl_socket_set_buffer_size(sk_, 1024 * 1024, 0);
    nl_socket_modify_cb(
        sk_, NL_CB_VALID, NL_CB_CUSTOM,
        [](nl_msg* msg, void* arg) -> int {
            const auto type = nlmsg_hdr(msg)->nlmsg_type;
            if (type == RTM_DELADDR || type == RTM_DELLINK) *static_cast<bool*>(arg) = true;
            return NL_OK;
        },
        &deleted_);
}

LinkEvents::~LinkEvents() {
    if (sk_) nl_socket_free(sk_);
}

int LinkEvents::fd() const {
    return nl_socket_get_fd(sk_);
}

bool LinkEvents::drain() {
    deleted_ = false;
    for (;;) {
        const int n = nl_recvmsgs_default(sk_);
        if (n >= 0) continue;
        if (n == -NLE_AGAIN) break;
        if (n == -NLE_INTR) continue;
        // NLE_NOMEM is ENOBUFS: announcements were lost.
        deleted_ = true;
        if (n != -NLE_NOMEM) break;
    }
    return deleted_;
}

}  // namespace portpub
