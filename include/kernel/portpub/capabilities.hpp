// The privileges portpub needs, checked before it changes anything.
#pragma once

namespace portpub {

// Throws Error naming the missing capabilities (CAP_NET_ADMIN for links and
// nftables, CAP_SYS_ADMIN to enter the container's namespace).
void require_capabilities();

}  // namespace portpub
