#include "portpub/error.hpp"

#include <cstdint>
#include <cstring>

namespace portpub {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (2 to 4
// bytes: overlong forms and surrogates excluded, as JSON serialisers check),
// or 0 when there is none.
std::size_t utf8_length(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
    const std::uint8_t lead = byte(0);
    std::size_t n = 0;
    std::uint8_t lo = 0x80, hi = 0xbf;  // the range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
        n = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        n = 3;
        if (lead == 0xe0) lo = 0xa0;  // overlong
        if (lead == 0xed) hi = 0x9f;  // surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        n = 4;
        if (lead == 0xf0) lo = 0x90;  // overlong
        if (lead == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
    return n;
}

void escape(std::string& out, std::uint8_t c) {
    static constexpr char kHex[] = "0123456789abcdef";
    switch (c) {
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        default:
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
    }
}

}  // namespace

std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const auto c = static_cast<std::uint8_t>(text.front());
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            text.remove_prefix(1);
            continue;
        }
        const std::size_t n = c < 0x80 ? 0 : utf8_length(text);
        // U+0080-U+009F, the C1 controls (NEL among them), are 0xc2 0x80-0x9f.
        if (n == 0 || (n == 2 && c == 0xc2 && static_cast<std::uint8_t>(text[1]) < 0xa0)) {
            escape(out, c);
            text.remove_prefix(1);
            continue;
        }
        out.append(text.substr(0, n));
        text.remove_prefix(n);
    }
    return out;
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
