// The OCI hook's decisions: the runtime's state parsed, its status and io.portpub. annotations
// turned into publish, unpublish or nothing, and whether a poststop is that of the container a
// record was published for.
#include "portpub/oci_hook.hpp"

#include <nlohmann/json.hpp>
#include <regex>

#include "portpub/error.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/loopback_rewrite.hpp"

namespace portpub {

namespace {

std::string trimmed(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::string field_string(const nlohmann::json& j, const char* key, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) throw Error(std::string("the OCI state has no \"") + key + "\"");
        return "";
    }
    if (!it->is_string())
        throw Error(std::string("the OCI state's \"") + key + "\" is not a string");
    return it->get<std::string>();
}

}  // namespace

OciState parse_oci_state(const std::string& text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error("the OCI state on stdin is not JSON (" + std::string(e.what()) +
                    "); portpub oci-hook must be run by a runtime as a hook");
    }
    if (!j.is_object()) throw Error("the OCI state on stdin is not a JSON object");
    OciState s;
    s.id = field_string(j, "id", true);
    validate_id(s.id);
    s.status = field_string(j, "status", true);
    s.bundle = field_string(j, "bundle", false);
    if (auto it = j.find("pid"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer())
            throw Error("the OCI state's \"pid\" of container " + s.id + " is not an integer");
        s.pid = it->get<long long>();
    }
    if (auto it = j.find("annotations"); it != j.end() && !it->is_null()) {
        if (!it->is_object())
            throw Error("the OCI state's \"annotations\" of container " + s.id +
                        " is not an object");
        for (const auto& [key, value] : it->items()) {
            if (!value.is_string())
                throw Error("annotation " + key + " of container " + s.id + " is not a string");
            s.annotations[key] = value.get<std::string>();
        }
    }
    return s;
}

HookAction hook_action(const OciState& state) {
    for (const auto& [key, value] : state.annotations) {
        if (key.rfind("io.portpub.", 0) != 0) continue;
        if (key != kPortsAnnotation && key != kNetnsAnnotation && key != kBridgeAnnotation &&
            key != kSubnetAnnotation && key != kSubnet6Annotation && key != kIpv6Annotation &&
            key != kFirewallAnnotation && key != kWatchAnnotation && key != kLoopbackAnnotation)
            throw Error("unknown annotation " + key + " on container " + state.id +
                        " (portpub reads " + kPortsAnnotation + ", " + kNetnsAnnotation + ", " +
                        kBridgeAnnotation + ", " + kSubnetAnnotation + ", " + kSubnet6Annotation +
                        ", " + kIpv6Annotation + ", " + kFirewallAnnotation + ", " +
                        kWatchAnnotation + " and " + kLoopbackAnnotation + ")");
    }
    HookAction action;
    action.id = state.id;
    action.origin = {state.bundle, state.pid.value_or(0)};
    auto annotation = [&](const char* key) -> std::optional<std::string> {
        auto it = state.annotations.find(key);
        if (it == state.annotations.end()) return std::nullopt;
        return it->second;
    };
    if (state.status == "stopped") {
        action.kind = HookAction::Kind::unpublish;
        return action;
    }
    if (state.status == "running") {
        action.why = "container " + state.id +
                     " is running: portpub publishes at createRuntime and unpublishes at "
                     "poststop, and does nothing here";
        return action;
    }
    if (state.status != "creating" && state.status != "created")
        throw Error("container " + state.id + " has status '" + state.status +
                    "', which portpub does not know (creating, created, running, stopped)");
    auto ports = annotation(kPortsAnnotation);
    if (!ports) {
        action.why = "container " + state.id + " has no " + kPortsAnnotation +
                     " annotation: nothing to publish";
        return action;
    }
    UpRequest& up = action.up;
    up.id = state.id;
    up.oci = action.origin;
    std::size_t start = 0;
    for (;;) {
        const auto comma = ports->find(',', start);
        auto spec = trimmed(ports->substr(start, comma - start));
        if (spec.empty())
            throw Error("annotation " + std::string(kPortsAnnotation) + "='" + *ports +
                        "' of container " + state.id +
                        " has an empty port spec; separate specs with single commas, as in "
                        "8080:80,5353:53/udp");
        up.specs.push_back(std::move(spec));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (auto netns = annotation(kNetnsAnnotation)) {
        up.netns = *netns;
    } else if (state.pid && *state.pid > 0) {
        up.netns = "/proc/" + std::to_string(*state.pid) + "/ns/net";
    } else {
        throw Error("the OCI state of container " + state.id +
                    " has no pid; run portpub oci-hook as a createRuntime hook, or name the "
                    "namespace with the " +
                    kNetnsAnnotation + " annotation");
    }
    if (auto bridge = annotation(kBridgeAnnotation)) up.bridge = *bridge;
    if (auto subnet = annotation(kSubnetAnnotation)) up.subnet = *subnet;
    if (auto subnet6 = annotation(kSubnet6Annotation)) up.subnet6 = *subnet6;
    auto flag = [&](const char* name, bool& out) {
        auto v = annotation(name);
        if (!v) return;
        if (*v != "true" && *v != "false")
            throw Error("annotation " + std::string(name) + "='" + shown(*v) + "' of container " +
                        state.id + " must be true or false");
        out = *v == "true";
    };
    flag(kIpv6Annotation, up.ipv6);
    flag(kWatchAnnotation, up.watch);
    if (auto loopback = annotation(kLoopbackAnnotation))
        up.rewrite =
            parse_loopback_mode(*loopback, "annotation " + std::string(kLoopbackAnnotation) +
                                               " of container " + state.id + ":");
    if (auto firewall = annotation(kFirewallAnnotation))
        up.pass_firewalls =
            parse_firewall_mode(*firewall, "annotation " + std::string(kFirewallAnnotation) +
                                               " of container " + state.id + ":") ==
            FirewallMode::automatic;
    action.kind = HookAction::Kind::publish;
    return action;
}

bool poststop_is_for(const Publication& p, const OciOrigin& given, bool namespace_alive) {
    if (p.cni_network || p.made_by == Publication::MadeBy::cli ||
        p.made_by == Publication::MadeBy::cni)
        return false;
    static const std::regex proc_path(R"(/proc/[0-9]+/ns/net)");
    if (namespace_alive && std::regex_match(p.netns, proc_path)) return false;
    if (!p.oci) return true;
    if (!p.oci->bundle.empty() && !given.bundle.empty() && p.oci->bundle != given.bundle)
        return false;
    return p.oci->pid <= 0 || given.pid <= 0 || p.oci->pid == given.pid;
}

}  // namespace portpub
