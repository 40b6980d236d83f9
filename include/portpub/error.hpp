// Errors a user can act on. Every message names the offending value and, where
// there is one, what to do about it; the CLI prints it on one line.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace portpub {

// `text` with what would break a one-line UTF-8 message written out as C
// escapes: control characters ("\n", "\x1b"; C1 ones too) and bytes that are
// not UTF-8 ("\xff"). Messages quote hostile input (a -p value, an annotation,
// a CNI field), which must neither split the line, drive the terminal, nor
// make the CNI error JSON unprintable.
std::string one_line(std::string_view text);

class Error : public std::runtime_error {
  public:
    // The message is made one line here, so that no call site has to.
    explicit Error(const std::string& what) : std::runtime_error(one_line(what)) {}
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
