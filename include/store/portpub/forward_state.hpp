// What `portpub forward apply` last made true, kept in STATE_DIR/forwards.json
// (under the state directory's lock): the forwards and their proxy. The
// container side reads it too: `up` refuses a host port a forward holds, and
// ip_forward is put back only when neither a container nor a remote forward
// needs it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "portpub/forward_config.hpp"
#include "portpub/port_allocator.hpp"
#include "portpub/process_id.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

inline constexpr const char* kForwardState = "forwards.json";

struct AppliedForwards {
    std::string config;  // the file they came from
    std::vector<Forward> forwards;
    std::optional<ProcessId> proxy;
};

// Its JSON and back; pure. from_json throws Error naming `what`.
std::string applied_forwards_text(const AppliedForwards& a);
AppliedForwards parse_applied_forwards(std::string_view text, const std::string& what);

AppliedForwards load_applied_forwards(const StateStore& store);
// An empty state (no forward, no proxy) removes the file.
void save_applied_forwards(StateStore& store, const AppliedForwards& a);

// True while a remote forward to an IPv4 target needs net.ipv4.ip_forward.
bool forwards_need_ip_forward(const StateStore& store);
// Likewise for IPv6 targets and net.ipv6.conf.all.forwarding.
bool forwards_need_ip6_forward(const StateStore& store);

// Makes `facts` count the host ports of the applied forwards as in use, named
// as "portpub forward 80:5000/tcp (...)", so that `up` refuses them and never
// picks them for a random port.
void add_forward_holds(HostPortFacts& facts, const StateStore& store);

}  // namespace portpub
