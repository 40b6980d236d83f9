// The proxies' log: lines stamped with UTC time, appended to a 0600 file under STATE_DIR/logs,
// which moves to NAME.1 when the next line would pass the bound. A log that cannot be written
// never stops the proxy.
#include "portpub/logger.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

namespace portpub {

namespace {

std::string rotated(const std::filesystem::path& log) {
    return log.string() + ".1";
}

}  // namespace

std::filesystem::path log_path(const std::filesystem::path& state_dir, const std::string& id) {
    return state_dir / "logs" / (id + ".log");
}

void remove_log(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::filesystem::remove(rotated(path), ec);
}

Logger::Logger(std::filesystem::path path, std::size_t max_bytes)
    : path_(std::move(path)), max_(max_bytes) {
    // In the state directory, which exists: 0700 like it, whatever the umask.
    ::mkdir(path_.parent_path().c_str(), 0700);
    ::chmod(path_.parent_path().c_str(), 0700);
    open();
}

void Logger::open() {
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    struct stat st {};
    size_ = fd_ && ::fstat(fd_.get(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

void Logger::write(const std::string& line) {
    if (!fd_) open();  // it failed before (out of descriptors?): try again
    if (!fd_) return;  // a log that cannot be written must not stop the proxy
    if (size_ + line.size() + 32 > max_) {
        const auto old = rotated(path_);
        ::rename(path_.c_str(), old.c_str());
        open();
        if (!fd_) return;
    }
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    const std::string text = stamp + line + "\n";
    if (::write(fd_.get(), text.data(), text.size()) > 0) size_ += text.size();
}

}  // namespace portpub
