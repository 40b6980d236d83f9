// Each step has one name and each name one step, and a process is killed only at the step
// PORTPUB_CRASH_AT names.
#include "portpub/crash_points.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace portpub;

namespace {

// How a child that sets PORTPUB_CRASH_AT=`at` and passes `step` ends:
// the signal that killed it, or 0 when it exited.
int run_child(const char* at, Step step) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (at) ::setenv(kCrashAtVariable, at, 1);
        crash_point(step);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace

TEST_CASE("every step has one name, and each name one step", "[crash]") {
    std::set<std::string_view> names;
    std::set<Step> steps;
    for (const auto& [step, name] : kSteps) {
        names.insert(name);
        steps.insert(step);
        CHECK((name.rfind("up:", 0) == 0 || name.rfind("down:", 0) == 0 ||
               name.rfind("restore:", 0) == 0));
    }
    CHECK(names.size() == std::size(kSteps));
    CHECK(steps.size() == std::size(kSteps));
    CHECK(static_cast<std::size_t>(Step::restore_firewalls) + 1 == std::size(kSteps));
}

TEST_CASE("a crash point kills the process only at the step named", "[crash]") {
    CHECK(run_child("up:veth", Step::up_veth) == SIGKILL);
    CHECK(run_child("up:veth", Step::up_bridge) == 0);
    CHECK(run_child(nullptr, Step::up_veth) == 0);
    CHECK(run_child("veth", Step::up_veth) == 0);
}
