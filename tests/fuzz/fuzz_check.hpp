// What every fuzz target asserts about hostile input: the parser accepts it,
// or rejects it with the exception it documents and a message that is one
// non-empty line. Anything else (another exception type, an empty or
// multi-line message, a broken invariant of what was accepted) is a bug,
// reported through abort() so that libFuzzer, and the corpus replay of the
// ordinary test run, stop with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

namespace portpub::fuzz {

[[noreturn]] inline void bug(std::string_view step, std::string_view what) {
    std::fprintf(stderr, "fuzz: BUG in %.*s: %.*s\n", static_cast<int>(step.size()), step.data(),
                 static_cast<int>(what.size()), what.data());
    std::abort();
}

inline void require(bool ok, std::string_view step, std::string_view what) {
    if (!ok) bug(step, what);
}

// Text printed as one line on a terminal or in a log: no newline, and no other
// control character either, since a '\r' or an escape sequence rewrites the
// line as well as a '\n' breaks it.
inline void check_line(std::string_view step, std::string_view text) {
    if (text.empty()) bug(step, "an empty message");
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
            bug(step, "a message with a control character: " + std::string(text));
}

// Runs `parse`. True when it accepted the input; false when it rejected it
// with an `Expected`, whose message is checked and which `also` may check
// further. Any other exception escaping is a bug.
template <class Expected, class Parse, class Also>
bool accepted(std::string_view step, Parse&& parse, Also&& also) {
    try {
        parse();
        return true;
    } catch (const Expected& e) {
        check_line(step, e.what());
        also(e);
        return false;
    } catch (const std::exception& e) {
        bug(step, std::string("threw ") + typeid(e).name() + " instead of " +
                      typeid(Expected).name() + ": " + e.what());
    } catch (...) {
        bug(step, "threw something that is not a std::exception");
    }
}

template <class Expected, class Parse>
bool accepted(std::string_view step, Parse&& parse) {
    return accepted<Expected>(step, std::forward<Parse>(parse), [](const Expected&) {});
}

}  // namespace portpub::fuzz
