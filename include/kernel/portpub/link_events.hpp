// rtnetlink's announcements of links and addresses going away, for the
// watcher: a bridge address or a veth removed by hand is put back as a
// flush is. Additions are passed over: portpub's own repairs add, and the
// links of every container that starts would wake the watcher for nothing.
#pragma once

struct nl_sock;

namespace portpub {

class LinkEvents {
  public:
    // Subscribes to RTNLGRP_LINK and the IPv4 and IPv6 address groups.
    LinkEvents();
    ~LinkEvents();
    LinkEvents(const LinkEvents&) = delete;
    LinkEvents& operator=(const LinkEvents&) = delete;

    int fd() const;
    // Reads what is queued, without waiting. True when an address or a link
    // was deleted, or when announcements were lost.
    bool drain();

  private:
    nl_sock* sk_ = nullptr;
    bool deleted_ = false;  // set by the socket's callback during drain()
};

}  // namespace portpub
