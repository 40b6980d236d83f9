// The two settings of net.bridge.bridge-nf-call-iptables a test runs under.
#pragma once

#include <catch2/catch.hpp>

#include "lab.hpp"

namespace lab {

// The bridge-nf value of this run, or -1 when the kernel lacks br_netfilter.
inline int bridge_nf_setting() {
    int nf = GENERATE(0, 1);
    if (nf == 1 && !Lab::has_bridge_netfilter()) {
        WARN("this kernel has no br_netfilter: only bridge-nf-call-iptables=0 is tested");
        return -1;
    }
    return nf;
}

}  // namespace lab
