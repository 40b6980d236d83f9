// libFuzzer target: what portpub as a CNI plugin makes of its environment and
// its stdin, up to the point where run_cni_plugin starts changing things.
//
// An input is the process's environment as /proc/PID/environ holds it
// (NAME=VALUE entries, each ended by a NUL byte), an empty entry, then stdin:
//
//   CNI_COMMAND=ADD\0CNI_CONTAINERID=c1\0CNI_NETNS=/run/netns/c1\0CNI_IFNAME=eth0\0\0{"cniVersion":...}
//
// parse_environment, parse_config and up_request accept, or reject with a
// CniError: a code of the spec, a one-line message, and error JSON that
// serialises (the plugin prints it on stdout). validate_request's Error is
// what the plugin turns into code 7.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "portpub/cni.hpp"
#include "portpub/error.hpp"
#include "portpub/planner.hpp"

using namespace portpub;
using namespace portpub::cni;
using portpub::fuzz::accepted;
using portpub::fuzz::require;

namespace {

struct Input {
    std::vector<std::pair<std::string, std::string>> environ;
    std::string stdin_text;
};

Input split(std::string_view data) {
    Input in;
    for (;;) {
        const auto nul = data.find('\0');
        if (nul == std::string_view::npos) {  // no end of the environment: all of it is
            if (!data.empty()) in.environ.emplace_back(std::string(data), "");
            return in;
        }
        const auto entry = data.substr(0, nul);
        data.remove_prefix(nul + 1);
        if (entry.empty()) break;
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos)
            in.environ.emplace_back(std::string(entry.substr(0, eq)),
                                    std::string(entry.substr(eq + 1)));
    }
    in.stdin_text = std::string(data);
    return in;
}

bool known_code(int code) {
    switch (code) {
        case kIncompatibleVersion:
        case kUnsupportedField:
        case kUnknownContainer:
        case kInvalidEnvironment:
        case kIoFailure:
        case kUndecodable:
        case kInvalidConfig:
        case kTryAgainLater:
        case kNotAvailable:
            return true;
        default:
            return false;
    }
}

// What run_cni_plugin does with a CniError: the spec's error JSON on stdout.
void check_cni_error(const CniError& e, const std::string& version) {
    require(known_code(e.code()), "CniError", "a code the CNI spec does not define");
    if (!e.details().empty()) fuzz::check_line("CniError details", e.details());
    try {
        const auto j = error_json(e, version);
        require(j.at("code") == e.code() && j.at("msg") == e.what(), "error_json",
                "the JSON does not carry the error");
        j.dump();
    } catch (const std::exception& x) {
        fuzz::bug("error_json",
                  std::string("the plugin would die printing its error: ") + x.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto in = split(std::string_view(reinterpret_cast<const char*>(data), size));
    const auto get = [&](const char* name) -> std::optional<std::string> {
        for (const auto& [key, value] : in.environ)  // the first, as getenv finds it
            if (key == name) return value;
        return std::nullopt;
    };
    std::string version = kLatestVersion;  // as run_cni_plugin answers before the config is read
    const auto cni_rejected = [&](const CniError& e) { check_cni_error(e, version); };

    Environment env;
    const bool env_ok = accepted<CniError>(
        "parse_environment", [&] { env = parse_environment(get); }, cni_rejected);
    // A bad environment stops the plugin; the configuration is still worth
    // fuzzing, as ADD's.
    if (!env_ok) env = Environment{Command::add, "fuzz", "/run/netns/fuzz", "eth0"};

    Config config;
    if (!accepted<CniError>(
            "parse_config", [&] { config = parse_config(in.stdin_text, env.command); },
            cni_rejected))
        return 0;
    version = config.cni_version;
    constexpr std::string_view step = "parse_config";
    require(!config.cni_version.empty(), step, "accepted no cniVersion");
    if (env.command == Command::version) return 0;
    require(!config.name.empty() && !config.type.empty(), step, "accepted no name or type");
    for (const auto& m : config.port_mappings) {
        require(m.host_port >= 1 && m.host_port <= 65535 && m.container_port >= 1 &&
                    m.container_port <= 65535,
                step, "accepted a port out of range");
        require(m.protocol == "tcp" || m.protocol == "udp" || m.protocol == "sctp", step,
                "accepted an unknown protocol");
        require(m.host_ip.empty() || IpAddress::parse(m.host_ip), step,
                "accepted a hostIP that is no address");
    }
    if (env.command != Command::add) return 0;

    UpRequest req;
    if (!accepted<CniError>(
            "up_request", [&] { req = up_request(config, env); }, cni_rejected))
        return 0;
    // The specs portpub writes for the mappings are its own: they must parse.
    for (const auto& spec : req.specs)
        if (!accepted<Error>("port_specs", [&] { parse_port_spec(spec); }))
            fuzz::bug("port_specs", "wrote a spec that does not parse: " + spec);
    if (req.attached) {
        require(req.attached->address.is_v4() &&
                    req.attached->network.subnet.contains(req.attached->address),
                "attachment_from", "an address outside its subnet");
        require(!req.attached->network.bridge.empty(), "attachment_from", "no host-side link");
    }
    accepted<Error>("validate_request", [&] { validate_request(req); });
    return 0;
}
