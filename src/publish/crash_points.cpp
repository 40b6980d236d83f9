// The crash point: the process sends itself SIGKILL when PORTPUB_CRASH_AT names the step it
// has just passed, and goes on untouched otherwise.
#include "portpub/crash_points.hpp"

#include <signal.h>

#include <cstdlib>

namespace portpub {

void crash_point(Step step) {
    // Read each time: a handful of getenv calls per command cost nothing.
    const char* at = std::getenv(kCrashAtVariable);
    if (!at) return;
    for (const auto& s : kSteps)
        if (s.step == step && s.name == at) ::raise(SIGKILL);
}

}  // namespace portpub
