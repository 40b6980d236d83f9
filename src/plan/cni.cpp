// The CNI plugin's decisions, from values alone: the environment and the network configuration
// read and checked (errors numbered as the spec numbers them), portMappings turned into -p
// specs, the address taken from prevResult, and the result and error JSON.
#include "portpub/cni.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string_view>

#include "portpub/error.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/ip_address.hpp"
#include "portpub/loopback_rewrite.hpp"

namespace portpub::cni {

namespace {

using nlohmann::json;

// Far more than any plugin's configuration or result needs (they nest a few
// levels), far less than what overflows the stack.
constexpr std::size_t kMaxNesting = 128;

bool supported(const std::string& version) {
    return std::find(std::begin(kSupportedVersions), std::end(kSupportedVersions), version) !=
           std::end(kSupportedVersions);
}

std::string require_var(const std::function<std::optional<std::string>(const char*)>& get,
                        const char* name, const std::string& command) {
    auto value = get(name);
    if (!value || value->empty())
        throw CniError(kInvalidEnvironment, std::string(name) + " is not set; CNI " + command +
                                                " needs it (the runtime sets it)");
    return *value;
}

// Throws kInvalidConfig "FIELD must be a TYPE" unless `j[key]` has that type.
template <class T>
std::optional<T> field(const json& j, const std::string& key, json::value_t type,
                       const char* type_name, const std::string& path) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    bool ok =
        it->type() == type || (type == json::value_t::number_unsigned && it->is_number_integer());
    if (!ok)
        throw CniError(kInvalidConfig, "network configuration: " + path + " must be " + type_name +
                                           ", not " + it->dump());
    return it->get<T>();
}

std::optional<std::string> string_field(const json& j, const std::string& key,
                                        const std::string& path) {
    return field<std::string>(j, key, json::value_t::string, "a string", path);
}

// An object with `keys` spelt as the CNI conventions spell them. containerd
// marshals go-cni's PortMapping, whose fields have no JSON tags ("HostPort",
// "ContainerPort", "Protocol", "HostIP"), and Go plugins match keys without
// regard to case, as encoding/json does: so does portpub. An exact key wins
// over another spelling of it.
json canonical_keys(const json& j, std::initializer_list<std::string> keys) {
    json out = j;
    for (const std::string& key : keys) {
        if (j.contains(key)) continue;
        for (const auto& [k, v] : j.items()) {
            const bool same = k.size() == key.size() &&
                              std::equal(k.begin(), k.end(), key.begin(), [](char a, char b) {
                                  return std::tolower(static_cast<unsigned char>(a)) ==
                                         std::tolower(static_cast<unsigned char>(b));
                              });
            if (same) {
                out[key] = v;
                break;
            }
        }
    }
    return out;
}

PortMapping parse_mapping(const json& given, const std::string& path) {
    if (!given.is_object())
        throw CniError(kInvalidConfig, "network configuration: " + path + " must be an object");
    const json j = canonical_keys(given, {"hostPort", "containerPort", "protocol", "hostIP"});
    PortMapping m;
    auto port = [&](const char* key) {
        auto v =
            field<long long>(j, key, json::value_t::number_unsigned, "a number", path + "." + key);
        if (!v || *v < 1 || *v > 65535)
            throw CniError(kInvalidConfig,
                           "network configuration: " + path + "." + key + " " +
                               (v ? std::to_string(*v) : std::string("is missing")) +
                               ": give a port from 1 to 65535");
        return static_cast<int>(*v);
    };
    m.host_port = port("hostPort");
    m.container_port = port("containerPort");
    if (auto proto = string_field(j, "protocol", path + ".protocol")) {
        m.protocol = *proto;
        std::transform(m.protocol.begin(), m.protocol.end(), m.protocol.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (m.protocol.empty()) m.protocol = "tcp";
        if (m.protocol != "tcp" && m.protocol != "udp" && m.protocol != "sctp")
            throw CniError(kInvalidConfig, "network configuration: " + path + ".protocol '" +
                                               *proto + "': use tcp, udp or sctp");
    }
    if (auto ip = string_field(j, "hostIP", path + ".hostIP")) {
        if (!ip->empty() && !IpAddress::parse(*ip))
            throw CniError(kInvalidConfig, "network configuration: " + path + ".hostIP '" + *ip +
                                               "' is not an IP address");
        m.host_ip = *ip;
    }
    return m;
}

// The deepest nesting of arrays and objects in `text`, which is JSON. Copying,
// comparing and printing a json value recurse once a level: a configuration
// nested 100,000 deep (200 KB, well under what stdin may hold) overflows the
// stack in them.
std::size_t nesting(std::string_view text) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;  // whatever is escaped, it ends no string
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

std::string cidr_str(const IpAddress& a, int prefix) {
    return a.str() + "/" + std::to_string(prefix);
}

}  // namespace

Environment parse_environment(const std::function<std::optional<std::string>(const char*)>& get) {
    Environment env;
    const auto command = get("CNI_COMMAND").value_or("");
    if (command == "ADD") {
        env.command = Command::add;
    } else if (command == "DEL") {
        env.command = Command::del;
    } else if (command == "CHECK") {
        env.command = Command::check;
    } else if (command == "VERSION") {
        env.command = Command::version;
    } else if (command == "STATUS") {
        env.command = Command::status;
    } else if (command == "GC") {
        env.command = Command::gc;
    } else {
        throw CniError(kInvalidEnvironment, "CNI_COMMAND '" + command +
                                                "' is not a CNI command: use ADD, DEL, CHECK, "
                                                "VERSION, STATUS or GC");
    }
    if (env.command != Command::add && env.command != Command::del && env.command != Command::check)
        return env;
    env.container_id = require_var(get, "CNI_CONTAINERID", command);
    try {
        validate_id(env.container_id);
    } catch (const Error& e) {
        throw CniError(kInvalidEnvironment, std::string("CNI_CONTAINERID: ") + e.what());
    }
    env.ifname = require_var(get, "CNI_IFNAME", command);
    try {
        validate_ifname(env.ifname, "CNI_IFNAME");
    } catch (const Error& e) {
        throw CniError(kInvalidEnvironment, e.what());
    }
    // DEL must work when the namespace is gone, and the runtime may then leave it out.
    if (env.command == Command::del)
        env.netns = get("CNI_NETNS").value_or("");
    else
        env.netns = require_var(get, "CNI_NETNS", command);
    try {
        if (!env.netns.empty() || env.command != Command::del) validate_netns_path(env.netns);
    } catch (const Error& e) {
        throw CniError(kInvalidEnvironment, std::string("CNI_NETNS: ") + e.what());
    }
    return env;
}

std::string reply_version(const std::string& text) {
    const auto j = json::parse(text, nullptr, false);
    if (j.is_object())
        if (auto v = j.find("cniVersion"); v != j.end() && v->is_string())
            if (supported(v->get<std::string>())) return v->get<std::string>();
    return kLatestVersion;
}

Config parse_config(const std::string& text, Command command) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw CniError(kUndecodable, "the network configuration on stdin is not JSON", e.what());
    }
    if (!j.is_object())
        throw CniError(kUndecodable, "the network configuration on stdin is not a JSON object");
    if (nesting(text) > kMaxNesting)
        throw CniError(kInvalidConfig,
                       "network configuration: arrays and objects nest deeper than " +
                           std::to_string(kMaxNesting) + " levels");
    Config c;
    c.cni_version = string_field(j, "cniVersion", "cniVersion").value_or("");
    if (c.cni_version.empty())
        throw CniError(kInvalidConfig, "network configuration: cniVersion is missing");
    if (command == Command::version) return c;  // VERSION reads nothing else
    if (!supported(c.cni_version))
        throw CniError(kIncompatibleVersion,
                       "CNI version " + c.cni_version +
                           " is not supported by portpub; use 1.0.0 or 1.1.0 in the network "
                           "configuration",
                       "supported: 1.0.0, 1.1.0");
    c.name = string_field(j, "name", "name").value_or("");
    c.type = string_field(j, "type", "type").value_or("");
    if (c.name.empty() || c.type.empty())
        throw CniError(kInvalidConfig, std::string("network configuration: ") +
                                           (c.name.empty() ? "name" : "type") + " is missing");
    try {
        validate_network_name(c.name);
    } catch (const Error& e) {
        throw CniError(kInvalidConfig, std::string("network configuration: ") + e.what());
    }
    if (auto v = string_field(j, "bridge", "bridge")) c.bridge = *v;
    if (auto v = string_field(j, "subnet", "subnet")) c.subnet = *v;
    if (auto v = string_field(j, "subnet6", "subnet6")) c.subnet6 = *v;
    auto flag = [&j](const char* name, bool& out) {
        auto v = j.find(name);
        if (v == j.end() || v->is_null()) return;
        if (!v->is_boolean())
            throw CniError(kInvalidConfig, "network configuration: " + std::string(name) +
                                               " must be true or false, not " +
                                               shown(v->dump(), 40));
        out = v->get<bool>();
    };
    flag("ipv6", c.ipv6);
    flag("watch", c.watch);
    if (auto v = string_field(j, "loopback", "loopback")) {
        try {
            c.rewrite = parse_loopback_mode(*v, "loopback");
        } catch (const Error& e) {
            throw CniError(kInvalidConfig, std::string("network configuration: ") + e.what());
        }
    }
    if (auto v = string_field(j, "firewall", "firewall")) {
        try {
            c.pass_firewalls = parse_firewall_mode(*v, "firewall") == FirewallMode::automatic;
        } catch (const Error& e) {
            throw CniError(kInvalidConfig, std::string("network configuration: ") + e.what());
        }
    }
    if (auto v = string_field(j, "stateDir", "stateDir")) {
        if (v->empty() || v->front() != '/')
            throw CniError(kInvalidConfig,
                           "network configuration: stateDir '" + *v + "' must be an absolute path");
        c.state_dir = *v;
    }
    if (auto rc = j.find("runtimeConfig"); rc != j.end() && !rc->is_null()) {
        if (!rc->is_object())
            throw CniError(kInvalidConfig,
                           "network configuration: runtimeConfig must be an object");
        if (auto pm = rc->find("portMappings"); pm != rc->end() && !pm->is_null()) {
            if (!pm->is_array())
                throw CniError(kInvalidConfig,
                               "network configuration: runtimeConfig.portMappings must be a list");
            for (std::size_t i = 0; i < pm->size(); ++i)
                c.port_mappings.push_back(parse_mapping(
                    (*pm)[i], "runtimeConfig.portMappings[" + std::to_string(i) + "]"));
        }
    }
    if (auto prev = j.find("prevResult"); prev != j.end() && !prev->is_null()) {
        if (!prev->is_object())
            throw CniError(kInvalidConfig, "network configuration: prevResult must be an object");
        c.prev_result = *prev;
    }
    if (auto valid = j.find("cni.dev/valid-attachments"); valid != j.end() && !valid->is_null()) {
        if (!valid->is_array())
            throw CniError(kInvalidConfig,
                           "network configuration: cni.dev/valid-attachments must be a list");
        for (std::size_t i = 0; i < valid->size(); ++i) {
            const auto path = "cni.dev/valid-attachments[" + std::to_string(i) + "]";
            if (!(*valid)[i].is_object())
                throw CniError(kInvalidConfig,
                               "network configuration: " + path + " must be an object");
            const auto a = canonical_keys((*valid)[i], {"containerID", "ifname"});
            // Without it, GC could not tell which container to keep.
            const auto id = string_field(a, "containerID", path + ".containerID");
            if (!id || id->empty())
                throw CniError(kInvalidConfig, "network configuration: " + path +
                                                   " has no containerID; GC removes nothing");
            c.valid_attachments.push_back(
                {*id, string_field(a, "ifname", path + ".ifname").value_or("")});
        }
    }
    return c;
}

std::vector<std::string> port_specs(const std::vector<PortMapping>& mappings) {
    std::vector<std::string> specs;
    std::size_t i = 0;
    while (i < mappings.size()) {
        const auto& first = mappings[i];
        std::size_t n = 1;
        while (i + n < mappings.size()) {
            const auto& next = mappings[i + n];
            if (next.protocol != first.protocol || next.host_ip != first.host_ip ||
                next.host_port != first.host_port + static_cast<int>(n) ||
                next.container_port != first.container_port + static_cast<int>(n))
                break;
            ++n;
        }
        std::string spec;
        if (!first.host_ip.empty()) {
            auto ip = IpAddress::parse(first.host_ip);
            spec = ip->url_str() + ":";
        }
        auto range = [n](int start) {
            return n == 1 ? std::to_string(start)
                          : std::to_string(start) + "-" +
                                std::to_string(start + static_cast<int>(n) - 1);
        };
        spec += range(first.host_port) + ":" + range(first.container_port) + "/" + first.protocol;
        specs.push_back(std::move(spec));
        i += n;
    }
    return specs;
}

std::optional<std::string> not_for(const Publication& p, const std::string& network,
                                   const Environment& env,
                                   std::optional<std::uint64_t> netns_inode) {
    const std::string what = "the publication of container " + p.id;
    if (p.id != env.container_id || p.cni_network != network)
        return what + " is not in network " + network;
    if (!env.ifname.empty() && env.ifname != p.ifname)
        return what + " is on interface " + p.ifname + ", not " + env.ifname;
    if (!env.netns.empty() && (netns_inode ? *netns_inode != p.netns_inode : env.netns != p.netns))
        return what + " is in namespace " + p.netns + ", not " + env.netns;
    return std::nullopt;
}

portpub::Attachment attachment_from(const json& prev, const std::string& ifname) {
    auto invalid = [](const std::string& what) {
        return CniError(kInvalidConfig, "network configuration: prevResult " + what);
    };
    // json::value() throws json::type_error for a field of another type: the
    // plugin's answer would then be code 100 without naming the field.
    auto text = [&](const json& object, const char* list, const char* key) {
        auto it = object.find(key);
        if (it == object.end() || it->is_null()) return std::string();
        if (!it->is_string())
            throw invalid(std::string(list) + "[]." + key + " must be a string, not " + it->dump());
        return it->get<std::string>();
    };
    const json interfaces = prev.value("interfaces", json::array());
    const json ips = prev.value("ips", json::array());
    if (!interfaces.is_array() || !ips.is_array())
        throw invalid("interfaces and ips must be lists");
    auto in_sandbox = [&](const json& iface) {
        return iface.is_object() && !text(iface, "interfaces", "sandbox").empty();
    };
    // The first address of `family` on the container's interface, with its gateway.
    auto address_of = [&](Family family) -> std::optional<std::pair<Cidr, IpAddress>> {
        for (const auto& ip : ips) {
            if (!ip.is_object()) throw invalid("ips must hold objects");
            auto cidr = Cidr::parse(text(ip, "ips", "address"));
            if (!cidr)
                throw invalid("address " + ip.value("address", json()).dump() + " is not a CIDR");
            if (cidr->address.family() != family) continue;
            if (family == Family::v6 &&
                Cidr{*IpAddress::parse("fe80::"), 10}.contains(cidr->address))
                continue;  // link-local: not an address clients use
            if (auto idx = ip.find("interface"); idx != ip.end() && idx->is_number_integer()) {
                auto k = idx->get<long long>();
                if (k < 0 || k >= static_cast<long long>(interfaces.size()))
                    throw invalid("ips[].interface " + std::to_string(k) + " names no interface");
                const auto& iface = interfaces[static_cast<std::size_t>(k)];
                if (!in_sandbox(iface) || text(iface, "interfaces", "name") != ifname) continue;
            }
            IpAddress gateway = cidr->network().plus(1);
            if (auto gw = ip.find("gateway"); gw != ip.end() && gw->is_string()) {
                auto parsed = IpAddress::parse(gw->get<std::string>());
                if (!parsed || parsed->family() != family)
                    throw invalid("gateway " + gw->dump() + " is not " +
                                  (family == Family::v4 ? "IPv4" : "IPv6"));
                gateway = *parsed;
            }
            return std::pair{*cidr, gateway};
        }
        return std::nullopt;
    };
    if (auto v4 = address_of(Family::v4)) {
        const auto& [cidr, gateway] = *v4;
        portpub::Attachment a;
        a.address = cidr.address;
        a.network.subnet = Cidr{cidr.network(), cidr.prefix};
        a.network.gateway = gateway;
        // An IPv6 address too: IPv6 clients then reach it through kernel DNAT.
        if (auto v6 = address_of(Family::v6)) {
            a.address6 = v6->first.address;
            a.network.subnet6 = Cidr{v6->first.network(), v6->first.prefix};
            a.network.gateway6 = v6->second;
        }
        // The host side of the plugin before: a bridge plugin lists its bridge
        // first, a ptp plugin its host end of the veth.
        for (const auto& iface : interfaces)
            if (iface.is_object() && !in_sandbox(iface)) {
                a.network.bridge = text(iface, "interfaces", "name");
                break;
            }
        if (a.network.bridge.empty())
            throw invalid("names no host-side interface (bridge or veth) for " + ifname);
        // The name goes into the nftables set of bridges, which holds 15 bytes.
        try {
            validate_ifname(a.network.bridge, "prevResult interface name");
        } catch (const Error& e) {
            throw CniError(kInvalidConfig, std::string("network configuration: ") + e.what());
        }
        return a;
    }
    throw CniError(kInvalidConfig,
                   "network configuration: prevResult has no IPv4 address for interface " + ifname +
                       "; portpub publishes ports to the container's IPv4 address");
}

UpRequest up_request(const Config& config, const Environment& env) {
    UpRequest req;
    req.specs = port_specs(config.port_mappings);
    req.netns = env.netns;
    req.id = env.container_id;
    req.ifname = env.ifname;
    req.bridge = config.bridge;
    req.subnet = config.subnet;
    req.subnet6 = config.subnet6;
    req.ipv6 = config.ipv6;
    req.pass_firewalls = config.pass_firewalls;
    req.watch = config.watch;
    req.rewrite = config.rewrite;
    req.cni_network = config.name;
    // A CNI runtime holds the host ports itself (Podman binds them once ADD
    // returns); the proxy must not take them first.
    req.reserve = false;
    req.runtime_holds_ports = true;
    if (config.prev_result) req.attached = attachment_from(*config.prev_result, env.ifname);
    return req;
}

json main_result(const Publication& p, const std::string& cni_version) {
    const auto mac = container_mac(p.address);
    char mac_text[18];
    std::snprintf(mac_text, sizeof mac_text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
                  mac[2], mac[3], mac[4], mac[5]);
    json ips = json::array({{{"address", cidr_str(p.address, p.network.subnet.prefix)},
                             {"gateway", p.network.gateway.str()},
                             {"interface", 2}}});
    json routes = json::array({{{"dst", "0.0.0.0/0"}, {"gw", p.network.gateway.str()}}});
    if (p.address6) {
        ips.push_back({{"address", cidr_str(*p.address6, p.network.subnet6->prefix)},
                       {"gateway", p.network.gateway6.str()},
                       {"interface", 2}});
        routes.push_back({{"dst", "::/0"}, {"gw", p.network.gateway6.str()}});
    }
    return {
        {"cniVersion", cni_version},
        {"interfaces",
         json::array({{{"name", p.network.bridge}},
                      {{"name", p.host_veth}},
                      {{"name", p.ifname}, {"mac", mac_text}, {"sandbox", p.netns}}})},
        {"ips", std::move(ips)},
        {"routes", std::move(routes)},
        {"dns", json::object()},
    };
}

json error_json(const CniError& e, const std::string& cni_version) {
    json j = {{"cniVersion", supported(cni_version) ? cni_version : kLatestVersion},
              {"code", e.code()},
              {"msg", e.what()}};
    if (!e.details().empty()) j["details"] = e.details();
    return j;
}

json version_json() {
    return {{"cniVersion", kLatestVersion},
            {"supportedVersions", json::array({kSupportedVersions[0], kSupportedVersions[1]})}};
}

}  // namespace portpub::cni
