// Network namespace files and switching into them.
#pragma once

#include <cstdint>
#include <string>

#include "portpub/fd.hpp"

namespace portpub {

// An open, verified handle on a network namespace file (/run/netns/NAME or
// /proc/PID/ns/net).
class Netns {
  public:
    // Throws Error when the path is missing, not a namespace, a namespace of
    // another type, or portpub's own network namespace.
    static Netns open(const std::string& path);
    // A handle none of open()'s checks were made on: for a Host that is not
    // the kernel's (the fakes of publisher_test.cpp), never for a user's path.
    static Netns unchecked(UniqueFd fd, std::uint64_t inode, std::string path) {
        Netns ns;
        ns.fd_ = std::move(fd);
        ns.inode_ = inode;
        ns.path_ = std::move(path);
        return ns;
    }

    int fd() const { return fd_.get(); }
    std::uint64_t inode() const { return inode_; }
    const std::string& path() const { return path_; }

  private:
    Netns() = default;
    UniqueFd fd_;
    std::uint64_t inode_ = 0;
    std::string path_;
};

// Absolute and with symlinks of existing parents resolved (/var/run -> /run),
// so that a path names the same record before and after the file is removed.
std::string normalize_netns_path(const std::string& path);

// Enters a network namespace for the lifetime of the object (this thread only);
// sockets made meanwhile stay in it. Restoring cannot fail silently: if it
// fails the process aborts rather than go on in the wrong namespace.
class NetnsSwitch {
  public:
    explicit NetnsSwitch(int target_fd);
    ~NetnsSwitch();
    NetnsSwitch(const NetnsSwitch&) = delete;
    NetnsSwitch& operator=(const NetnsSwitch&) = delete;

  private:
    UniqueFd saved_;
};

}  // namespace portpub
