#include "portpub/error.hpp"

#include <catch2/catch.hpp>

using namespace portpub;

TEST_CASE("one_line escapes what would break a one-line UTF-8 message", "[error]") {
    CHECK(one_line("plain 'text' \\ stays") == "plain 'text' \\ stays");
    CHECK(one_line("a\nb\rc\td") == "a\\nb\\rc\\td");
    CHECK(one_line(std::string("nul\0esc\x1b[2Jdel\x7f", 15)) == "nul\\x00esc\\x1b[2Jdel\\x7f");
    // UTF-8 stays, whatever its length; C1 controls (U+0085 NEL) do not.
    CHECK(one_line("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK(one_line("x\xc2\x85y") == "x\\xc2\\x85y");
    // Bytes that are not UTF-8: stray, truncated, overlong, surrogate, too high.
    CHECK(one_line("\xff") == "\\xff");
    CHECK(one_line("ab\xe2\x82") == "ab\\xe2\\x82");
    CHECK(one_line("\xc0\xaf") == "\\xc0\\xaf");
    CHECK(one_line("\xed\xa0\x80") == "\\xed\\xa0\\x80");
    CHECK(one_line("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
}

TEST_CASE("an Error's message is one line whatever it quotes", "[error]") {
    CHECK(std::string(Error("bad 'a\nb'").what()) == "bad 'a\\nb'");
    CHECK(std::string(Error(std::string("x\xff")).what()) == "x\\xff");
    // Escaping twice changes nothing: errors re-thrown with what() keep their text.
    const Error once("a\nb\xff");
    CHECK(std::string(Error(once.what()).what()) == once.what());
}
