// Errors a user can act on. Every message names the offending value and, where
// there is one, what to do about it; the CLI prints it on one line.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace portpub {

// `text` as one line of printable UTF-8: control characters (a newline, NUL,
// an escape sequence) and bytes that are not UTF-8 become \xNN, so that a
// value quoted from the input can neither break the line nor fool a terminal
// or a JSON encoder.
std::string printable(std::string_view text);

// A value to quote in a message: printable, and cut after `max` characters
// with its length named, so that a 10,000-character value keeps the line
// readable.
std::string shown(std::string_view value, std::size_t max = 80);

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what) : std::runtime_error(printable(what)) {}
    explicit Error(const char* what) : Error(std::string(what)) {}
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
