// The proxies' log: lines stamped with UTC time, appended to a 0600 file under STATE_DIR/logs.
// Both files, NAME and NAME.1, are opened when the log starts, and never again by name: when the
// next line would pass the bound, NAME's text is copied over NAME.1 and NAME emptied, through the
// descriptors, so that a proxy that has given up its privileges (and may open no file) still
// rotates its log. A log that cannot be written never stops the proxy.
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
    constexpr int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
    fd_.reset(::open(path_.c_str(), flags | O_APPEND, 0600));
    old_.reset(::open(rotated(path_).c_str(), flags, 0600));
    struct stat st {};
    size_ = fd_ && ::fstat(fd_.get(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

bool Logger::rotate() {
    if (!old_ || ::ftruncate(old_.get(), 0) != 0) return false;
    off_t in = 0, out = 0;
    while (in < static_cast<off_t>(size_)) {
        const auto n = ::copy_file_range(fd_.get(), &in, old_.get(), &out, size_ - in, 0);
        if (n > 0) continue;
        if (n == 0) break;
        // (a file system without it: the same through a buffer)
        char buf[65536];
        const auto got = ::pread(fd_.get(), buf, sizeof buf, in);
        if (got <= 0 || ::pwrite(old_.get(), buf, got, out) != got) return false;
        in += got;
        out += got;
    }
    if (::ftruncate(fd_.get(), 0) != 0) return false;
    size_ = 0;
    return true;
}

void Logger::write(const std::string& line) {
    if (!fd_) return;  // a log that cannot be written must not stop the proxy
    if (size_ + line.size() + 32 > max_ && !rotate()) return;
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    const std::string text = stamp + line + "\n";
    if (::write(fd_.get(), text.data(), text.size()) > 0) size_ += text.size();
}

}  // namespace portpub
