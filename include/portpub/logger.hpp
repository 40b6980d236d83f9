// The proxy's log: lines with a timestamp in a file under the state
// directory, bounded in size (the file is moved to NAME.1 when it is full).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "portpub/fd.hpp"

namespace portpub {

class Logger {
  public:
    explicit Logger(std::filesystem::path path, std::size_t max_bytes = 1 << 20);
    void write(const std::string& line);
    const std::filesystem::path& path() const { return path_; }

  private:
    void open();
    std::filesystem::path path_;
    std::size_t max_, size_ = 0;
    UniqueFd fd_;
};

}  // namespace portpub
