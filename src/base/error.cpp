// Error messages that stay one printable line: control characters and bytes that are not
// well-formed UTF-8 become \xNN, long values are cut with their length named, and an errno
// value becomes its text.
#include "portpub/error.hpp"

#include <cstring>

namespace portpub {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (a
// character above U+007F), or 0 when there is none: overlong forms,
// surrogates and code points above U+10FFFF are not well-formed.
std::size_t utf8_sequence(std::string_view s) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
    const unsigned char c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
        if (c == 0xED && b(1) >= 0xA0) return 0;  // a surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
        if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

}  // namespace

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
            ++i;
        } else if (std::size_t n = c > 0x7F ? utf8_sequence(text.substr(i)) : 0;
                   // U+0080-U+009F, the C1 controls (NEL among them): 0xC2 0x80-0x9F.
                   n > 0 && !(c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0)) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            static const char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
            ++i;
        }
    }
    return out;
}

std::string shown(std::string_view value, std::size_t max) {
    if (value.size() <= max) return printable(value);
    return printable(value.substr(0, max)) + "... (" + std::to_string(value.size()) +
           " characters)";
}

std::string errno_text(int err) {
    char buf[256];
    // GNU strerror_r returns a pointer that may or may not be buf.
    return ::strerror_r(err, buf, sizeof buf);
}

void throw_errno(const std::string& what, int err) {
    throw Error(what + ": " + errno_text(err));
}

}  // namespace portpub
