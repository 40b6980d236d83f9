// The shell of the CNI plugin: the configuration from stdin and CNI_* from the environment,
// each CNI command carried out through the publisher, the result or error JSON on stdout.
// cni.cpp decides what to publish and which publication a DEL, CHECK or GC may touch.
#include "portpub/cni_plugin.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "portpub/capabilities.hpp"
#include "portpub/cni.hpp"
#include "portpub/error.hpp"
#include "portpub/netns.hpp"
#include "portpub/nft_firewall.hpp"
#include "portpub/publisher.hpp"

namespace portpub {

namespace {

using namespace cni;

// portpub's own error code (the spec leaves 100 and up to plugins): the
// publication failed, and the message says why and what to do.
constexpr int kPublishFailed = 100;

std::string read_all(std::istream& in) {
    // A configuration with a prevResult of 65,535 port mappings is a few MiB.
    constexpr std::size_t kMax = 64u << 20;
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > kMax)
            throw CniError(kIoFailure, "the network configuration on stdin is over 64 MiB");
    }
    return text;
}

// Runs `f`, turning a portpub Error into a CNI error of `code`.
template <class F>
auto as_cni(int code, F&& f) {
    try {
        return f();
    } catch (const Error& e) {
        throw CniError(code, e.what());
    }
}

// The record `id` when it was made for this network, else nothing.
std::optional<Publication> record_of(const Publisher& publisher, const std::string& id,
                                     const Config& config) {
    for (auto& p : publisher.list().usable)
        if (p.id == id && p.cni_network == config.name) return p;
    return std::nullopt;
}

nlohmann::json add(const Config& config, const Environment& env, std::ostream& err) {
    UpRequest req = up_request(config, env);
    as_cni(kInvalidConfig, [&] { validate_request(req); });
    Publisher publisher(config.state_dir);
    for (const auto& p : publisher.list().usable)
        if (p.id == env.container_id && p.cni_network != config.name)
            throw CniError(kPublishFailed,
                           "container " + env.container_id + " is already published by portpub" +
                               (p.cni_network ? " in CNI network " + *p.cni_network
                                              : std::string(" (portpub up or its OCI hook)")) +
                               "; portpub publishes one network per container");
    auto pub = as_cni(kPublishFailed, [&] { return publisher.up(req); });
    for (const auto& note : publisher.notes())
        err << "portpub: " << note << "\n";
    if (!config.prev_result) return main_result(pub, config.cni_version);
    // Chained: the result of the plugin before, passed on.
    auto result = *config.prev_result;
    result["cniVersion"] = config.cni_version;
    return result;
}

// The namespace CNI_NETNS names, while its file exists.
std::optional<std::uint64_t> netns_inode_of(const std::string& path) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return std::nullopt;
    return st.st_ino;
}

// `env` with CNI_NETNS as records hold paths (/var/run/netns/x is
// /run/netns/x), for not_for to compare once the file is gone.
Environment as_recorded(Environment env) {
    if (!env.netns.empty()) env.netns = normalize_netns_path(env.netns);
    return env;
}

void del(const Config& config, const Environment& env, std::ostream& err) {
    Publisher publisher(config.state_dir);
    const auto records = publisher.list();
    // A damaged record of this container is left alone, and said so: the
    // runtime forgets the container after a DEL that succeeds.
    for (const auto& u : records.unusable)
        if (std::filesystem::path(u.file).filename() == env.container_id + ".json")
            err << "portpub: " << u.advice() << "\n";
    if (!record_of(publisher, env.container_id, config)) return;
    const auto inode = netns_inode_of(env.netns);
    const auto recorded = as_recorded(env);
    DownRequest req{env.container_id, std::nullopt, {}};
    req.only_if = [&](const Publication& p) { return not_for(p, config.name, recorded, inode); };
    as_cni(kPublishFailed, [&] { publisher.down(req); });
    for (const auto& note : publisher.notes())
        err << "portpub: " << note << "\n";
}

void check(const Config& config, const Environment& env) {
    Publisher publisher(config.state_dir);
    const auto record = record_of(publisher, env.container_id, config);
    const auto other =
        record ? not_for(*record, config.name, as_recorded(env), netns_inode_of(env.netns))
               : std::nullopt;
    if (!record || other)
        throw CniError(kPublishFailed, "portpub has no publication of container " +
                                           env.container_id + " in network " + config.name +
                                           (other ? " (" + *other + ")" : std::string()) +
                                           "; run ADD again");
    auto missing =
        as_cni(kPublishFailed, [&] { return publisher.missing_parts(env.container_id); });
    if (missing && !missing->empty()) {
        std::string msg = "container " + env.container_id + ": ";
        for (std::size_t i = 0; i < missing->size(); ++i)
            msg += (i ? "; " : "") + (*missing)[i];
        throw CniError(kPublishFailed, msg + " (DEL and ADD again restore it)");
    }
}

void status(const Config& config) {
    try {
        require_capabilities();
        Publisher publisher(config.state_dir);
        publisher.list();  // the records are readable
        NftFirewall firewall(config.state_dir);
    } catch (const Error& e) {
        throw CniError(kNotAvailable, std::string("portpub cannot publish: ") + e.what());
    }
}

void gc(const Config& config, std::ostream& err) {
    Publisher publisher(config.state_dir);
    for (const auto& p : publisher.list().usable) {
        if (p.cni_network != config.name) continue;
        // An attachment without an interface name keeps every one of its container's.
        if (std::any_of(config.valid_attachments.begin(), config.valid_attachments.end(),
                        [&](const ValidAttachment& a) {
                            return a.container_id == p.id &&
                                   (a.ifname.empty() || a.ifname == p.ifname);
                        }))
            continue;
        as_cni(kPublishFailed, [&] { publisher.down(DownRequest{p.id, std::nullopt, {}}); });
        for (const auto& note : publisher.notes())
            err << "portpub: " << note << "\n";
        err << "portpub: removed the publication of container " << p.id
            << ", which the runtime no longer has\n";
    }
}

}  // namespace

bool cni_requested() {
    return std::getenv("CNI_COMMAND") != nullptr;
}

int run_cni_plugin(std::istream& in, std::ostream& out, std::ostream& err) {
    std::string version = kLatestVersion;
    try {
        // stdin first: every error, a bad environment's too, answers in the
        // configuration's version.
        const auto text = read_all(in);
        version = reply_version(text);
        const auto env = parse_environment([](const char* name) -> std::optional<std::string> {
            const char* v = std::getenv(name);
            return v ? std::optional<std::string>(v) : std::nullopt;
        });
        auto config = parse_config(text, env.command);
        version = config.cni_version;
        if (config.state_dir.empty()) config.state_dir = kDefaultStateDir;
        switch (env.command) {
            case Command::version:
                out << version_json().dump() << "\n";
                break;
            case Command::add:
                out << add(config, env, err).dump() << "\n";
                break;
            case Command::del:
                del(config, env, err);
                break;
            case Command::check:
                check(config, env);
                break;
            case Command::status:
                status(config);
                break;
            case Command::gc:
                gc(config, err);
                break;
        }
        return 0;
    } catch (const CniError& e) {
        out << error_json(e, version).dump() << "\n";
    } catch (const std::exception& e) {
        out << error_json(CniError(kPublishFailed, e.what()), version).dump() << "\n";
    }
    return 1;
}

}  // namespace portpub
