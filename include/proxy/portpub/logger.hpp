// The proxy's log: lines with a timestamp in a file under the state
// directory, bounded in size (when it is full, its text moves to NAME.1).
// Both files are opened at the start and never again by name.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "portpub/fd.hpp"

namespace portpub {

// The log of container `id`'s proxy: STATE_DIR/logs/ID.log.
std::filesystem::path log_path(const std::filesystem::path& state_dir, const std::string& id);
// Removes a log and the copy it was rotated to.
void remove_log(const std::filesystem::path& path);

class Logger {
  public:
    explicit Logger(std::filesystem::path path, std::size_t max_bytes = 1 << 20);
    void write(const std::string& line);
    const std::filesystem::path& path() const { return path_; }

  private:
    bool rotate();
    std::filesystem::path path_;
    std::size_t max_, size_ = 0;
    UniqueFd fd_, old_;
};

}  // namespace portpub
