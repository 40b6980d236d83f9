// up / down / ls: the imperative shell around the planner. `up` applies a plan
// step by step and undoes every step if a later one fails; `down` removes what
// the record says, tolerating what is already gone.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "portpub/planner.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

class Netns;

// Where records live unless --state-dir (or a CNI "stateDir") says otherwise.
inline constexpr const char* kDefaultStateDir = "/run/portpub";

struct DownRequest {
    std::optional<std::string> id;
    std::optional<std::string> netns;
};

class Publisher {
  public:
    explicit Publisher(std::filesystem::path state_dir) : store_(std::move(state_dir)) {}

    Publication up(const UpRequest& req);
    // Things `up` says once, for the user (not errors): what is not served.
    const std::vector<std::string>& notes() const { return notes_; }
    // The publication removed, or nullopt when nothing matched (not an error).
    std::optional<Publication> down(const DownRequest& req);
    std::vector<Publication> list() const { return store_.load_all(); }
    // What is missing of publication `id` in the kernel: its namespace, veth,
    // map elements, proxy. Empty when whole; nullopt when there is no record.
    std::optional<std::vector<std::string>> check(const std::string& id);

  private:
    Publication apply(Publication pub, const std::vector<Publication>& others, const Netns& ns,
                      HostState& host);
    void teardown(const Publication& pub, const std::vector<Publication>& remaining,
                  HostState& host);

    void add_notes(const UpRequest& req, const Publication& pub);
    // The state directory as the table's owner: absolute, symlinks resolved.
    std::string owner() const;

    StateStore store_;
    std::vector<std::string> notes_;
};

}  // namespace portpub
