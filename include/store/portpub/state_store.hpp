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
#include "portpub/host_state.hpp"
#include "portpub/publication.hpp"

namespace portpub {

// A file of containers/ that portpub cannot use: unreadable, malformed, or
// not as portpub writes records (another file name, names portpub never
// gives). It is reported, and it and whatever it names are left alone.
struct UnusableRecord {
    std::string file;  // its path
    std::string why;   // what is wrong, naming the file
    // One line for the user: what is wrong and what to do.
    std::string advice() const;
};

// What the records directory holds.
struct Records {
    std::vector<Publication> usable;  // sorted by id
    std::vector<UnusableRecord> unusable;
    // Whether every record could be read: only then is what no record names
    // certainly no container's (a table, a bridge, map elements, veths).
    bool complete() const { return unusable.empty(); }
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
    // For commands that only read: a shared lock, so that no command that
    // changes things runs meanwhile, taken without writing anything (a
    // read-only state directory is fine; one that does not exist holds no
    // records, and then nothing is locked).
    Lock lock_shared() const;

    // Every record; empty when the directory does not exist. A record that
    // cannot be used is listed apart (see UnusableRecord): never an error
    // that would keep the others from being read.
    Records load_all() const;
    void save(const Publication& p);
    void remove(const std::string& id);  // no error if absent

    // What host.json says; empty when there is none. When it cannot be used
    // (damaged, or names no bridge portpub could have made) the state is
    // empty, host_problem() says why, and save_host leaves the file alone.
    HostState load_host() const;
    void save_host(const HostState& h);
    const std::optional<std::string>& host_problem() const { return host_problem_; }

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
    mutable std::optional<std::string> host_problem_;
};

}  // namespace portpub
