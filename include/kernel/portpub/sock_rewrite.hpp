// The socket programs that rewrite connections to published loopback ports
// (src/kernel/bpf/sock_rewrite.bpf.c), through libbpf: loaded from the
// skeleton built into portpub, attached with bpf_link at a cgroup v2
// directory, and pinned with their service map in bpffs, so that they outlive
// the command as nftables rules do. Unpinning them detaches them.
#pragma once

#include <string>
#include <vector>

#include "portpub/fd.hpp"
#include "portpub/loopback_rewrite.hpp"

namespace portpub {

// Where portpub pins its links and map unless told otherwise.
inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/portpub";

class SockRewrite {
  public:
    explicit SockRewrite(std::string pin_dir = kDefaultPinDir);

    // The root of the cgroup v2 hierarchy, from /proc/self/mountinfo. Throws
    // Error when none is mounted.
    static std::string cgroup2_root();

    // Attaches the programs at `cgroup` ("": cgroup2_root()) for the sockets
    // of the calling thread's network namespace, unless they are attached
    // already. Mounts bpffs at /sys/fs/bpf where it is missing. Throws Error
    // saying why the kernel cannot rewrite here (not cgroup v2, no CAP_BPF,
    // lockdown, a kernel without these hooks), with nothing left pinned.
    void attach(const std::string& cgroup);
    // Every link and the map are pinned.
    bool attached() const;
    // What of them is missing, one name each ("link connect4", "map services").
    std::vector<std::string> missing() const;
    // Makes the entries' ports go where they say, whatever held them
    // before; throws Error when not attached.
    void add(const std::vector<RewriteEntry>& entries);
    // Makes their ports rewritten no more; those already gone, or no map
    // at all, are no error.
    void remove(const std::vector<RewriteEntry>& entries);
    // What the map rewrites, port by port, as joined runs (join_runs);
    // empty when not attached.
    std::vector<RewriteEntry> entries() const;
    // Unpins the links and the map, which detaches the programs.
    void detach();

  private:
    void change(const std::vector<RewriteEntry>& add, const std::vector<RewriteEntry>& remove);
    // The pinned service map, refused when another version pinned it.
    UniqueFd open_services(bool missing_ok) const;
    std::string pin_dir_;
};

}  // namespace portpub
