// The per-container records and the host-wide facts portpub must remember,
// under one directory (default /run/portpub, mode 0700):
//   lock                  flock()ed by every command that changes anything
//   containers/ID.json    one record per published container (0600)
//   host.json             what portpub changed on the host and must undo
//   forwards.json         the forwards applied (`portpub forward`) and their proxy
// Files are replaced atomically (temporary file, fsync, rename, fsync of the
// directory), so a reader sees the old or the new version, never half of one.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "portpub/fd.hpp"
#include "portpub/publication.hpp"

namespace portpub {

// Host changes that outlive one container and are undone by the last `down`.
struct HostState {
    struct Bridge {
        bool created = false;         // portpub created the bridge device
        bool address_added = false;   // portpub added the gateway address to it
        bool brought_up = false;      // portpub set it up
        bool address6_added = false;  // portpub added the IPv6 gateway address to it
        friend bool operator==(const Bridge&, const Bridge&) = default;
    };
    std::optional<std::string> ip_forward_before;   // set when portpub changed it
    std::optional<std::string> ip6_forward_before;  // net.ipv6.conf.all.forwarding, likewise
    std::map<std::string, Bridge> bridges;
    friend bool operator==(const HostState&, const HostState&) = default;
};

class StateStore {
  public:
    explicit StateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

    // Creates the directory if needed and holds an exclusive lock on it until
    // the returned object is destroyed. Blocks while another portpub holds it.
    class Lock {
      public:
        explicit Lock(UniqueFd fd) : fd_(std::move(fd)) {}

      private:
        UniqueFd fd_;
    };
    Lock lock();

    // Every record, sorted by id; empty when the directory does not exist.
    std::vector<Publication> load_all() const;
    void save(const Publication& p);
    void remove(const std::string& id);  // no error if absent

    HostState load_host() const;
    void save_host(const HostState& h);

    // Another file of the directory, such as forwards.json: its text, or
    // nullopt when there is none. save_file replaces it atomically (0600).
    std::optional<std::string> load_file(const std::string& name) const;
    void save_file(const std::string& name, const std::string& text);
    void remove_file(const std::string& name);  // no error if absent

    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path containers_dir() const { return dir_ / "containers"; }
    void write_atomically(const std::filesystem::path& path, const std::string& text);

    std::filesystem::path dir_;
};

}  // namespace portpub
