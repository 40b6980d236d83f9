// portpub as a CNI plugin (spec 1.0.0 and 1.1.0), pure: the environment and
// the network configuration in; what to publish, the result and the error
// JSON out. The shell (cni_plugin.cpp) does the work in between.
//
//   main plugin ("type": "portpub" first in the list): bridge, veth, address
//     and ports, and a full result (interfaces, ips, routes);
//   chained (after bridge, ptp, ...): only the ports of
//     runtimeConfig.portMappings, to the address in prevResult, which it
//     passes on unchanged.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/planner.hpp"

namespace portpub::cni {

inline constexpr const char* kSupportedVersions[] = {"1.0.0", "1.1.0"};
inline constexpr const char* kLatestVersion = "1.1.0";

// Error codes of the spec (section "Error").
enum Code : int {
    kIncompatibleVersion = 1,
    kUnsupportedField = 2,
    kUnknownContainer = 3,
    kInvalidEnvironment = 4,
    kIoFailure = 5,
    kUndecodable = 6,
    kInvalidConfig = 7,
    kTryAgainLater = 11,
    kNotAvailable = 50,
};

class CniError : public std::runtime_error {
  public:
    // Both texts are made printable (see portpub::printable): they end up in
    // JSON, which must be UTF-8, and quote values of the input.
    CniError(int code, const std::string& msg, const std::string& details = {})
        : std::runtime_error(printable(msg)), code_(code), details_(printable(details)) {}
    int code() const { return code_; }
    const std::string& details() const { return details_; }

  private:
    int code_;
    std::string details_;
};

enum class Command { add, del, check, version, status, gc };

struct Environment {
    Command command = Command::version;
    std::string container_id, netns, ifname;
};

// Why DEL or CHECK with `env`, in network `network`, is not about
// publication `p`; nullopt when it is. A container is its id, network and
// interface name, and the namespace when the runtime names one: the same
// namespace (`netns_inode`: of CNI_NETNS, while that file exists) or, once it
// is gone, the same path. A runtime cleans up after an ADD that was refused
// because the id was in use in another namespace: that DEL is not for the
// publication of that other namespace.
std::optional<std::string> not_for(const Publication& p, const std::string& network,
                                   const Environment& env,
                                   std::optional<std::uint64_t> netns_inode);

// CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME as each command needs
// them; `get` returns a variable's value, or nullopt when it is unset.
// Throws CniError kInvalidEnvironment naming the variable.
Environment parse_environment(const std::function<std::optional<std::string>(const char*)>& get);

struct PortMapping {
    int host_port = 0;
    int container_port = 0;
    std::string protocol = "tcp";
    std::string host_ip;  // "" or "0.0.0.0" / "::": every address
    friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

struct ValidAttachment {
    std::string container_id, ifname;
    friend bool operator==(const ValidAttachment&, const ValidAttachment&) = default;
};

struct Config {
    std::string cni_version, name, type;
    // Main plugin only: the bridge and subnet to make (as `up --bridge/--subnet`).
    std::string bridge = "portpub0";
    std::string subnet = "10.77.0.0/16";
    std::optional<std::string> subnet6;  // "subnet6", as `up --subnet6`
    bool ipv6 = false;                   // "ipv6": true, as `up --ipv6`
    bool pass_firewalls = true;          // "firewall": "none", as `up --firewall none`
    bool watch = true;                   // "watch": false, as `up --no-watch`
    bool rewrite = true;                 // "loopback": "proxy", as `up --loopback proxy`
    std::string state_dir;               // "stateDir"; empty: portpub's default
    std::vector<PortMapping> port_mappings;
    std::optional<nlohmann::json> prev_result;
    std::vector<ValidAttachment> valid_attachments;  // GC: "cni.dev/valid-attachments"
};

// Throws CniError kUndecodable for text that is not a JSON object,
// kIncompatibleVersion for a cniVersion portpub does not speak, and
// kInvalidConfig naming the field for anything else.
Config parse_config(const std::string& text, Command command);

// The version to answer `text` in, even when it is invalid: its cniVersion
// when that is one portpub speaks, else the latest.
std::string reply_version(const std::string& text);

// The -p specs of the mappings; runs of consecutive ports become one range.
std::vector<std::string> port_specs(const std::vector<PortMapping>& mappings);

// What `up` gets for ADD: chained (a prevResult) or as the main plugin.
UpRequest up_request(const Config& config, const Environment& env);

// The container's IPv4 address and its network from the result of the
// plugin before portpub: the address of interface `ifname` in the sandbox,
// its gateway, and the host-side link of that plugin (bridge, or a veth).
portpub::Attachment attachment_from(const nlohmann::json& prev_result, const std::string& ifname);

// ADD's result as the main plugin: the bridge, the host end of the veth, the
// container's interface, its address and its default route.
nlohmann::json main_result(const Publication& p, const std::string& cni_version);

// {"cniVersion", "code", "msg", "details"}, as the spec defines.
nlohmann::json error_json(const CniError& e, const std::string& cni_version);

// VERSION's answer.
nlohmann::json version_json();

}  // namespace portpub::cni
