// Kernel settings read and written as files under /proc/sys: a setting that does not exist
// reads as nullopt, and a value comes back without its trailing newline.
#include "portpub/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "portpub/error.hpp"
#include "portpub/fd.hpp"

namespace portpub {

std::optional<std::string> read_sysctl(const std::string& key) {
    UniqueFd fd(::open(("/proc/sys/" + key).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    return out;
}

void write_sysctl(const std::string& key, const std::string& value) {
    const std::string path = "/proc/sys/" + key;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno("cannot open " + path);
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        throw_errno("cannot write '" + value + "' to " + path);
}

}  // namespace portpub
