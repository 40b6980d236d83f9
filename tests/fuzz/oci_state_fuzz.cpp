// libFuzzer target: what `portpub oci-hook` makes of the state a runtime
// writes on its stdin. parse_oci_state, then hook_action, then the checks
// `up` runs before it changes anything (validate_request): each accepts, or
// rejects with a one-line Error, which the hook prints on stderr.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "portpub/error.hpp"
#include "portpub/oci_hook.hpp"
#include "portpub/planner.hpp"

using namespace portpub;
using portpub::fuzz::accepted;
using portpub::fuzz::check_line;
using portpub::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);

    OciState state;
    if (!accepted<Error>("parse_oci_state", [&] { state = parse_oci_state(text); })) return 0;
    // The id becomes a file name: an accepted state has a valid one.
    if (!accepted<Error>("validate_id", [&] { validate_id(state.id); }))
        fuzz::bug("parse_oci_state", "accepted an invalid container id");

    HookAction action;
    if (!accepted<Error>("hook_action", [&] { action = hook_action(state); })) return 0;
    constexpr std::string_view step = "hook_action";
    switch (action.kind) {
        case HookAction::Kind::publish:
            require(action.id == state.id && action.up.id == state.id, step,
                    "publishes under another id");
            require(!action.up.specs.empty() && !action.up.netns.empty(), step,
                    "publishes no spec or in no namespace");
            for (const auto& spec : action.up.specs)
                require(!spec.empty(), step, "an empty spec");
            accepted<Error>("validate_request", [&] { validate_request(action.up); });
            break;
        case HookAction::Kind::unpublish:
            require(action.id == state.id && state.status == "stopped", step,
                    "unpublishes a container that is not stopped, or another one");
            break;
        case HookAction::Kind::nothing:
            check_line(step, action.why);  // the hook prints it on stderr
            break;
    }
    return 0;
}
