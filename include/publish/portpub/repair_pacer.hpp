// How often the watcher may repair. Repairs that put something back, one
// right after another, mean something keeps taking portpub's rules away as
// soon as they are back (a firewall manager that rewrites the ruleset
// whenever it changes). A mending repair that comes within 250 ms of when it
// was allowed is "close"; from the fifth close one in a row, each doubles the
// wait before the next, from 100 ms up to 10 s, so that the two never spin.
// A mending repair that is not close ends the run; one ten quiet seconds
// after it was allowed also clears the wait. People and services that flush
// now and then are repaired at once. Pure: times come in as values.
#pragma once

#include <chrono>

namespace portpub {

class RepairPacer {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kClose{250}, kFirstGap{100}, kLongestGap{10000};
    static constexpr int kCloseRun = 5;

    // A repair ran at `at`; `mended` when it put something back. True when
    // this made the wait reach a second for the first time since it last
    // started over (the moment to say so in the log).
    bool repaired(Clock::time_point at, bool mended);
    // The earliest the next repair may run.
    Clock::time_point next_allowed() const { return last_run_ + gap_; }
    std::chrono::milliseconds gap() const { return gap_; }

  private:
    Clock::time_point last_run_{}, last_mend_{};
    bool mended_before_ = false;
    int close_run_ = 0;  // close mending repairs in a row
    std::chrono::milliseconds gap_{0};
};

}  // namespace portpub
