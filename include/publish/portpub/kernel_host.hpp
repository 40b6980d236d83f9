// The real Host: nftables, libnl, the proxy processes, /proc/sys, the
// namespace files. Each part connects on first use, so that a command that
// reads only records (ls) opens no netlink socket.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "portpub/host.hpp"

namespace portpub {

// True while the namespace file a record names still holds that namespace.
bool namespace_alive(const Publication& p);

class KernelHost {
  public:
    // `owner`: the state directory as the table's owner (absolute, symlinks
    // resolved); `state_dir` as given, for the proxies' logs.
    KernelHost(std::string owner, std::filesystem::path state_dir);
    ~KernelHost();
    KernelHost(const KernelHost&) = delete;
    KernelHost& operator=(const KernelHost&) = delete;

    Host host();

  private:
    struct Parts;
    std::unique_ptr<Parts> parts_;
};

}  // namespace portpub
