// A process as portpub knows one it started (a proxy): its pid and its start
// time together, so that a recycled pid is never mistaken for it, let alone
// signalled. A value, kept in records and in the forward state.
#pragma once

#include <cstdint>

namespace portpub {

struct ProcessId {
    std::int32_t pid = 0;
    std::uint64_t start_time = 0;  // clock ticks after boot, /proc/PID/stat field 22
    friend bool operator==(const ProcessId&, const ProcessId&) = default;
};

}  // namespace portpub
