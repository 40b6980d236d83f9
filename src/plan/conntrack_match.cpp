// Whether a conntrack flow was sent to a published port: same protocol, a host port in a
// mapping's range, and a destination that is this host's and fits the mapping's address;
// and a flow written as a user reads it, for messages.
#include "portpub/conntrack_match.hpp"

#include "portpub/proxy_plan.hpp"

namespace portpub {

bool sent_to_published(const FlowTuple& flow, const std::vector<Mapping>& mappings,
                       const std::function<bool(const IpAddress&)>& is_local) {
    const IpAddress dst = unmapped(flow.dst);
    if (!is_local(dst)) return false;
    for (const auto& m : mappings) {
        if (m.proto != flow.proto || flow.dst_port < m.host_port || flow.dst_port > m.host_last())
            continue;
        if (!m.host_ip) return true;
        const IpAddress host = unmapped(*m.host_ip);
        if (host.is_unspecified() ? host.family() == dst.family() : host == dst) return true;
    }
    return false;
}

std::string describe(const FlowTuple& flow) {
    return std::string(proto_name(flow.proto)) + " " + flow.src.url_str() + ":" +
           std::to_string(flow.src_port) + " -> " + flow.dst.url_str() + ":" +
           std::to_string(flow.dst_port);
}

}  // namespace portpub
