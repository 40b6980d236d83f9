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
    Forwarder(std::filesystem::path state_dir, std::filesystem::path config)
        : store_(std::move(state_dir)), config_(std::move(config)) {}

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

  private:
    std::vector<Forward> read_config() const;
    void write_config(const std::vector<Forward>& forwards) const;
    // Checks against the containers, then the kernel and the proxy.
    std::vector<std::string> apply_locked(const std::vector<Forward>& forwards);

    StateStore store_;
    std::filesystem::path config_;
};

}  // namespace portpub
