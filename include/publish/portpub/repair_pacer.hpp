// How often the watcher may repair. Repairs that put something back and come
// close together mean something keeps taking portpub's rules away (a
// firewall manager that rewrites the ruleset whenever it changes): each one
// that comes within a second of when it was allowed doubles the wait before
// the next, from 100 ms up to 10 s, so that the two never spin; one that
// comes ten quiet seconds after that starts over without a wait. Pure: times
// come in as values.
#pragma once

#include <chrono>

namespace portpub {

class RepairPacer {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kFirstGap{100}, kLongestGap{10000};

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
    std::chrono::milliseconds gap_{0};
};

}  // namespace portpub
