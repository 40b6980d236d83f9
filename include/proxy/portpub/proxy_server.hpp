// `portpub proxy`: the userland proxy of one container, started by `up` with
// its sockets already made. Serves loopback and IPv6 TCP connections that nft
// redirects to its listeners, and UDP on the published ports themselves.
#pragma once

#include <string>
#include <vector>

namespace portpub {

// Exit status 0 on a clean stop (SIGTERM, or the container gone).
int run_proxy(const std::vector<std::string>& args);

}  // namespace portpub
