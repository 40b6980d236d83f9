// portpub as an OCI hook: the container state a runtime (runc, crun, Podman)
// writes on a hook's stdin, and what the hook does with it. Pure.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "portpub/planner.hpp"

namespace portpub {

// The annotations portpub reads; any other "io.portpub." key is an error, so
// that a misspelt one is not silently ignored.
inline constexpr const char* kPortsAnnotation = "io.portpub.ports";        // "8080:80,53:53/udp"
inline constexpr const char* kNetnsAnnotation = "io.portpub.netns";        // a netns file to use
inline constexpr const char* kBridgeAnnotation = "io.portpub.bridge";      // as up --bridge
inline constexpr const char* kSubnetAnnotation = "io.portpub.subnet";      // as up --subnet
inline constexpr const char* kSubnet6Annotation = "io.portpub.subnet6";    // as up --subnet6
inline constexpr const char* kIpv6Annotation = "io.portpub.ipv6";          // "true": as up --ipv6
inline constexpr const char* kFirewallAnnotation = "io.portpub.firewall";  // as up --firewall
inline constexpr const char* kWatchAnnotation = "io.portpub.watch";  // "false": as up --no-watch
inline constexpr const char* kLoopbackAnnotation = "io.portpub.loopback";  // as up --loopback

// The runtime-spec "state" of a container.
struct OciState {
    std::string id, status, bundle;
    std::optional<long long> pid;
    std::map<std::string, std::string> annotations;
};

// Parses the state JSON; an Error names what is wrong with it.
OciState parse_oci_state(const std::string& text);

struct HookAction {
    enum class Kind { publish, unpublish, nothing };
    Kind kind = Kind::nothing;
    UpRequest up;      // publish: what `portpub up` would get
    std::string id;    // publish, unpublish: the container id
    OciOrigin origin;  // publish, unpublish: the state's bundle and pid
    std::string why;   // nothing: why, for stderr
};

// createRuntime (status "creating"; also "created", as the deprecated prestart
// hook sees it) publishes the ports of the annotation, in /proc/PID/ns/net or
// the namespace the annotation names; poststop ("stopped") unpublishes by id
// what poststop_is_for() says is this container's.
HookAction hook_action(const OciState& state);

// Whether a poststop whose state has `given` (bundle, pid) is that of the
// container `p` was published for. Never one made by CNI or by hand. A bundle or pid
// both sides have must be equal (runtimes pass no pid at poststop, so in
// practice the bundle). And a container runs until its poststop: while the
// namespace `p` reached through /proc/PID/ns/net is still that of a live
// process (`namespace_alive`), it is another container's poststop, such as
// one refused at createRuntime for an id in use in another runtime root.
// Records of portpub before 0.6, which say neither, are judged by the
// namespace alone.
bool poststop_is_for(const Publication& p, const OciOrigin& given, bool namespace_alive);

}  // namespace portpub
