// The watcher's pacing: a rule taken away again as soon as it is back slows
// the repairs down to one every 10 s; flushes now and then never wait; a calm
// spell lets them run at once again.
#include "portpub/repair_pacer.hpp"

#include <catch2/catch.hpp>

using namespace portpub;
using namespace std::chrono_literals;

namespace {

// `n` mending repairs, each `after` the moment it was allowed.
RepairPacer::Clock::time_point mend(RepairPacer& pacer, RepairPacer::Clock::time_point t, int n,
                                    std::chrono::milliseconds after, int* said = nullptr) {
    for (int i = 0; i < n; ++i) {
        t = pacer.next_allowed() + after;
        const bool s = pacer.repaired(t, true);
        if (said) *said += s;
    }
    return t;
}

}  // namespace

TEST_CASE("flushes now and then, and repairs that mend nothing, never wait", "[pacer]") {
    RepairPacer pacer;
    const RepairPacer::Clock::time_point t0{};
    CHECK_FALSE(pacer.repaired(t0, true));
    CHECK(pacer.next_allowed() == t0);
    // 300 ms apart, a hundred times (what the heal benchmark does).
    auto t = mend(pacer, t0, 100, 300ms);
    CHECK(pacer.gap() == 0ms);
    CHECK(pacer.next_allowed() == t);
    for (int i = 1; i <= 50; ++i)
        pacer.repaired(t + i * 10ms, false);
    CHECK(pacer.gap() == 0ms);
    CHECK(pacer.next_allowed() == t + 500ms);
}

TEST_CASE("a rule taken away as soon as it is back: the wait doubles up to 10 s", "[pacer]") {
    RepairPacer pacer;
    auto t = RepairPacer::Clock::time_point{};
    pacer.repaired(t, true);
    int said = 0;
    // Four close ones in a row do not slow anything down yet.
    t = mend(pacer, t, 4, 20ms, &said);
    CHECK(pacer.gap() == 0ms);
    for (auto gap : {100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, 6400ms, 10000ms, 10000ms}) {
        t = mend(pacer, t, 1, 20ms, &said);
        CHECK(pacer.gap() == gap);
        CHECK(pacer.next_allowed() == t + gap);
    }
    CHECK(said == 1);  // the log says it once, when the wait reaches a second
    // Quiet for ten seconds after the next was allowed: it starts over.
    t = pacer.next_allowed() + 10s;
    CHECK_FALSE(pacer.repaired(t, true));
    CHECK(pacer.gap() == 0ms);
    CHECK(pacer.next_allowed() == t);
}

TEST_CASE("a repair that is not close ends the run; the wait stays until a calm spell", "[pacer]") {
    RepairPacer pacer;
    auto t = RepairPacer::Clock::time_point{};
    pacer.repaired(t, true);
    t = mend(pacer, t, 6, 20ms);
    REQUIRE(pacer.gap() == 200ms);
    t = mend(pacer, t, 1, 3s);  // not close: the run ends, the wait stays
    CHECK(pacer.gap() == 200ms);
    t = mend(pacer, t, 4, 20ms);  // a new run: four close ones change nothing yet
    CHECK(pacer.gap() == 200ms);
    t = mend(pacer, t, 1, 20ms);
    CHECK(pacer.gap() == 400ms);
    mend(pacer, t, 1, 10s);
    CHECK(pacer.gap() == 0ms);
}
