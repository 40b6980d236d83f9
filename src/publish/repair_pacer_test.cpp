// The watcher's pacing: a rule taken away again and again slows the repairs
// down to one every 10 s; a calm spell lets them run at once again.
#include "portpub/repair_pacer.hpp"

#include <catch2/catch.hpp>

using namespace portpub;
using namespace std::chrono_literals;

TEST_CASE("a single repair, and repairs far apart, run without a wait", "[pacer]") {
    RepairPacer pacer;
    const RepairPacer::Clock::time_point t0{};
    CHECK_FALSE(pacer.repaired(t0, true));
    CHECK(pacer.next_allowed() == t0);
    pacer.repaired(t0 + 5s, true);
    CHECK(pacer.gap() == 0ms);
    // Repairs that find nothing to mend never slow anything down.
    for (int i = 1; i <= 50; ++i)
        pacer.repaired(t0 + 5s + i * 10ms, false);
    CHECK(pacer.gap() == 0ms);
    CHECK(pacer.next_allowed() == t0 + 5s + 500ms);
}

TEST_CASE("repairs that keep mending within a second double the wait up to 10 s", "[pacer]") {
    RepairPacer pacer;
    auto t = RepairPacer::Clock::time_point{};
    pacer.repaired(t, true);
    std::chrono::milliseconds expected[] = {100ms,  200ms,  400ms,   800ms,  1600ms,
                                            3200ms, 6400ms, 10000ms, 10000ms};
    int said = 0;
    for (auto gap : expected) {
        t += 50ms;  // taken away again right after the repair
        t = std::max(t, pacer.next_allowed());
        said += pacer.repaired(t, true);
        CHECK(pacer.gap() == gap);
        CHECK(pacer.next_allowed() == t + gap);
    }
    CHECK(said == 1);  // the log says it once, when the wait reaches a second
    // Quiet for ten seconds after the next was allowed: it starts over.
    t += 10s + 10s;
    CHECK_FALSE(pacer.repaired(t, true));
    CHECK(pacer.gap() == 0ms);
    CHECK(pacer.next_allowed() == t);
}

TEST_CASE("between one and ten seconds apart, the wait stays as it is", "[pacer]") {
    RepairPacer pacer;
    auto t = RepairPacer::Clock::time_point{};
    pacer.repaired(t, true);
    pacer.repaired(t += 100ms, true);
    pacer.repaired(t += 200ms, true);
    REQUIRE(pacer.gap() == 200ms);
    pacer.repaired(t += 3s, true);
    CHECK(pacer.gap() == 200ms);
    pacer.repaired(t += 10s, true);  // 9.8 s after it was allowed
    CHECK(pacer.gap() == 200ms);
}
