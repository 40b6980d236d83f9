// Errors a user can act on. Every message names the offending value and, where
// there is one, what to do about it; the CLI prints it on one line.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace portpub {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// strerror(err) as a std::string (thread-safe).
std::string errno_text(int err);

// Throws Error("<what>: <strerror(err)>").
[[noreturn]] void throw_errno(const std::string& what, int err = errno);

// For C allocators that return NULL: the pointer, or Error("out of memory").
template <class T>
T* must(T* p) {
    if (!p) throw Error("out of memory");
    return p;
}

}  // namespace portpub
