// nftables' announcements of changes (the NFNLGRP_NFTABLES netlink group,
// what `nft monitor` reads, iptables-nft's changes included), for the
// watcher: a descriptor to poll, and whether what came is someone else's.
#pragma once

struct mnl_socket;

namespace portpub {

class NftEvents {
  public:
    // Subscribes; throws Error when the kernel has no nftables.
    NftEvents();
    ~NftEvents();
    NftEvents(const NftEvents&) = delete;
    NftEvents& operator=(const NftEvents&) = delete;

    int fd() const;
    // Reads what is queued, without waiting. True when a change was committed
    // by another process than this one (each transaction ends with a NEWGEN
    // announcement naming its process), or when announcements were lost.
    bool drain();

  private:
    mnl_socket* nl_ = nullptr;
};

}  // namespace portpub
