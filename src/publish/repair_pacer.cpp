// The pacer's rule, as the header says: a run of close mending repairs
// doubles the gap, a repair that is not close ends the run, a calm spell
// clears the gap. Closeness counts from when the repair was allowed.
#include "portpub/repair_pacer.hpp"

#include <algorithm>

namespace portpub {

bool RepairPacer::repaired(Clock::time_point at, bool mended) {
    last_run_ = at;
    if (!mended) return false;
    const auto before = gap_;
    const auto since = at - last_mend_ - gap_;  // after the repair was allowed
    if (mended_before_ && since < kClose) {
        if (++close_run_ >= kCloseRun)
            gap_ =
                gap_ == std::chrono::milliseconds(0) ? kFirstGap : std::min(gap_ * 2, kLongestGap);
    } else {
        close_run_ = 0;
        if (!mended_before_ || since >= std::chrono::seconds(10)) gap_ = {};
    }
    mended_before_ = true;
    last_mend_ = at;
    return before < std::chrono::seconds(1) && gap_ >= std::chrono::seconds(1);
}

}  // namespace portpub
