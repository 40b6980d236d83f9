// The table of UDP flows: the least recently used entry leaves when it is full, and entries
// idle for the timeout expire while used ones stay.
#include "portpub/lru_table.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace portpub;

TEST_CASE("the least recently used entry leaves when the table is full", "[lru]") {
    LruTable<std::string, int> t(2);
    CHECK_FALSE(t.insert("a", 1, 0));
    CHECK_FALSE(t.insert("b", 2, 1));
    REQUIRE(t.find("a", 2));  // a is now more recent than b
    auto evicted = t.insert("c", 3, 3);
    REQUIRE(evicted);
    CHECK(evicted->first == "b");
    CHECK(evicted->second == 2);
    CHECK(t.size() == 2);
    CHECK(t.find("b", 4) == nullptr);
    CHECK(*t.find("c", 4) == 3);
}

TEST_CASE("entries idle for the timeout expire, used ones stay", "[lru]") {
    LruTable<std::string, int> t(10);
    t.insert("a", 1, 0);
    t.insert("b", 2, 50);
    t.find("a", 80);
    auto gone = t.expire(140, 90);  // b idle 90, a idle 60
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].first == "b");
    CHECK(t.expire(169, 90).empty());
    CHECK(t.expire(170, 90).size() == 1);
    CHECK(t.size() == 0);
}
