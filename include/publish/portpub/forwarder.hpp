// `portpub forward`: the shell around the forward file. Every change goes
// to the file first (checked whole), then apply() makes the kernel and the
// forward proxy match the file, under the state directory's lock.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "portpub/forward_config.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

struct ForwardStatus {
    Forward forward;
    bool active = false;  // every port in the kernel, and its proxy running when it needs one
};

class Forwarder {
  public:
    // `watch`: add and apply start the state directory's watcher (as `up`
    // does) unless one runs; --no-watch says false.
    Forwarder(std::filesystem::path state_dir, std::filesystem::path config, bool watch = true)
        : store_(std::move(state_dir)), config_(std::move(config)), watch_(watch) {}

    // Adds the forwards to the file (one already listed is not added twice)
    // and applies the file. Nothing changes when any of them is refused.
    std::vector<std::string> add(const std::vector<Forward>& forwards);
    // Removes the matching forward from the file and applies it; throws
    // Error naming it when the file has no such forward.
    std::vector<std::string> remove(const Forward& forward);
    // Makes the kernel and the proxy what the file says (a missing file:
    // no forwards). Lines say what is in force.
    std::vector<std::string> apply();
    std::vector<ForwardStatus> list();
    // The watcher's repair: makes the kernel and the proxy what was last
    // applied again when any of it is missing (after a flush, a killed
    // proxy); what `forward rm` took away is not in it. Lines say what is in
    // force after a repair; empty when nothing was missing.
    std::vector<std::string> restore();

    // What add, remove and apply say once, for the user (not errors).
    const std::vector<std::string>& notes() const { return notes_; }

  private:
    std::vector<std::string> remove_locked(const Forward& forward);
    // apply_locked, then the watcher when forwards remain (under the lock).
    std::vector<std::string> apply_watched(const std::vector<Forward>& forwards);
    // The state directory as the watcher is given it: absolute.
    std::filesystem::path watched_dir() const;
    std::vector<Forward> read_config() const;
    void write_config(const std::vector<Forward>& forwards) const;
    // Checks against the containers, then the kernel and the proxy.
    std::vector<std::string> apply_locked(const std::vector<Forward>& forwards);

    StateStore store_;
    std::filesystem::path config_;
    bool watch_ = true;
    std::vector<std::string> notes_;
};

}  // namespace portpub
