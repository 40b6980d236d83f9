// The privilege check made before any change: CAP_NET_ADMIN and CAP_SYS_ADMIN in the effective
// set, and an error naming what is missing and saying to run as root.
#include "portpub/capabilities.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "portpub/error.hpp"

namespace portpub {

void require_capabilities() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0)
        throw_errno("cannot read the process capabilities");
    auto has = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
    std::string missing;
    if (!has(CAP_NET_ADMIN)) missing = "CAP_NET_ADMIN";
    if (!has(CAP_SYS_ADMIN))
        missing += std::string(missing.empty() ? "" : " and ") + "CAP_SYS_ADMIN";
    if (!missing.empty())
        throw Error("portpub needs " + missing +
                    " to change links and nftables rules; run it as root (sudo portpub ...)");
}

}  // namespace portpub
