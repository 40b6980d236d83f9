// printable() keeps text and valid UTF-8 and escapes controls and malformed sequences, shown()
// cuts long values and names their length, and an Error is one printable line whatever it quotes.
#include "portpub/error.hpp"

#include <catch2/catch.hpp>

using namespace portpub;

TEST_CASE("printable keeps text and UTF-8, and escapes the rest", "[error]") {
    CHECK(printable("host port 8080/tcp") == "host port 8080/tcp");
    CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3") ==
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3");
    CHECK(printable(std::string("a\nb\0c\x1b[31m\x7f", 11)) == "a\\x0ab\\x00c\\x1b[31m\\x7f");
    // Bytes that are not UTF-8: stray continuation, truncated sequence,
    // overlong form, surrogate, above U+10FFFF, never valid.
    CHECK(printable("8080:80\xff") == "8080:80\\xff");
    CHECK(printable("\x80") == "\\x80");
    CHECK(printable("\xc3") == "\\xc3");
    CHECK(printable("\xc3(") == "\\xc3(");
    CHECK(printable("\xe2\x82") == "\\xe2\\x82");
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");
    CHECK(printable("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");
    CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
    // C1 controls are UTF-8, and controls all the same (U+0085 NEL ends a line).
    CHECK(printable("x\xc2\x85y") == "x\\xc2\\x85y");
    CHECK(printable("\xc2\xa0") == "\xc2\xa0");  // no-break space stays
    // Made printable once, it stays as it is.
    const std::string once = printable("x\n\xff");
    CHECK(printable(once) == once);
}

TEST_CASE("shown cuts long values and names their length", "[error]") {
    CHECK(shown("web") == "web");
    CHECK(shown(std::string(80, 'a')) == std::string(80, 'a'));
    CHECK(shown(std::string(10000, 'a')) == std::string(80, 'a') + "... (10000 characters)");
    CHECK(shown("a\nb", 2) == "a\\x0a... (3 characters)");
}

TEST_CASE("an Error is one printable line, whatever it quotes", "[error]") {
    const Error e("invalid port spec '80\n\xff'");
    CHECK(std::string(e.what()) == "invalid port spec '80\\x0a\\xff'");
    CHECK(std::string(Error(std::string("a\0b", 3)).what()) == "a\\x00b");
}
