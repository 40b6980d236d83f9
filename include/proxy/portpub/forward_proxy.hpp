// The forward proxy: one process for every remote TCP forward, listening on
// 127.0.0.1:PORT and [::1]:PORT of each host port and relaying to the
// forward's target. Kernel NAT cannot send loopback traffic to another
// machine without route_localnet, which portpub never sets.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "portpub/forward_plan.hpp"
#include "portpub/proxy_process.hpp"

namespace portpub {

// The proxy's log: STATE_DIR/logs/_forwards.log (no container id starts with '_').
std::filesystem::path forward_proxy_log(const std::filesystem::path& state_dir);

// Makes the listeners (so that a port in use fails here, naming it), then
// runs `portpub forward-proxy` detached with them, as start_proxy does for
// containers. Returns once it said it is ready.
ProcessId start_forward_proxy(const std::vector<ProxyRoute>& routes,
                              const std::filesystem::path& state_dir);

// `portpub forward-proxy`: the process itself (internal; started above).
int run_forward_proxy(const std::vector<std::string>& args);

}  // namespace portpub
