// Publications as JSON: the record saved in the state directory and read back (refused, naming
// the file, when malformed or not as portpub writes it, so that it never steers a deletion),
// and the report of `up --json` and `ls --json`.
#include "portpub/publication.hpp"

#include <nlohmann/json.hpp>

#include "portpub/error.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/json_integer.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/naming.hpp"
#include "portpub/proxy_plan.hpp"

namespace portpub {

namespace {

constexpr int kRecordVersion = 1;

IpAddress address_field(const nlohmann::json& j, const char* key) {
    auto a = IpAddress::parse(j.at(key).get<std::string>());
    if (!a) throw std::invalid_argument(std::string("bad address in ") + key);
    return *a;
}

// What every record portpub writes satisfies. A record that does not was
// not written by portpub as it is (edited, planted, or damaged), and must
// not steer a deletion: its names and addresses are the ones portpub would
// give, or it is refused.
void check_as_portpub_makes_it(const Publication& p) {
    validate_id(p.id);
    if (p.netns.empty() || p.netns[0] != '/')
        throw Error("netns '" + shown(p.netns) + "' is not an absolute path");
    validate_netns_path(p.netns);
    validate_ifname(p.network.bridge, "bridge");
    validate_ifname(p.ifname, "ifname");
    if (p.cni_network) validate_network_name(*p.cni_network);
    const Cidr& subnet = p.network.subnet;
    if (!subnet.address.is_v4() || !subnet.is_network())
        throw Error("subnet " + subnet.str() + " is not an IPv4 network");
    if (!p.address.is_v4() || !subnet.contains(p.address))
        throw Error("address " + p.address.str() + " is not in subnet " + subnet.str());
    if (!p.host_veth.empty()) {  // portpub made the link, so the network is its own
        if (p.host_veth != host_veth_name(p.address))
            throw Error("host_veth '" + shown(p.host_veth) +
                        "' is not the veth portpub names for " + p.address.str() + " (" +
                        host_veth_name(p.address) + ")");
        if (!subnet.contains(p.network.gateway) || p.network.gateway == p.address)
            throw Error("gateway " + p.network.gateway.str() + " does not fit subnet " +
                        subnet.str());
    }
    if (p.network.subnet6) {
        const Cidr& subnet6 = *p.network.subnet6;
        if (subnet6.address.is_v4() || !subnet6.is_network())
            throw Error("subnet6 " + subnet6.str() + " is not an IPv6 network");
        if (!p.host_veth.empty() && !subnet6.contains(p.network.gateway6))
            throw Error("gateway6 " + p.network.gateway6.str() + " is not in subnet6 " +
                        subnet6.str());
    }
    if (p.oci && printable(p.oci->bundle) != p.oci->bundle)
        throw Error("bundle '" + shown(p.oci->bundle) + "' has control characters");
    if (p.proxy && p.proxy->pid < 0) throw Error("proxy pid " + std::to_string(p.proxy->pid));
}

}  // namespace

nlohmann::json to_record(const Publication& p) {
    nlohmann::json maps = nlohmann::json::array();
    for (const auto& m : p.mappings) {
        maps.push_back({{"host_ip", m.host_ip ? m.host_ip->str() : ""},
                        {"protocol", proto_name(m.proto)},
                        {"host_port", m.host_port},
                        {"container_port", m.container_port},
                        {"count", m.count}});
    }
    nlohmann::json proxy = nullptr;
    if (p.proxy)
        proxy = {{"listen4", p.proxy->listen4},
                 {"listen6", p.proxy->listen6},
                 {"ipv6", p.proxy->ipv6},
                 {"reserve", p.proxy->reserve},
                 {"runtime_holds_ports", p.proxy->runtime_holds_ports},
                 {"udp_timeout", p.proxy->udp_timeout},
                 {"pid", p.proxy->pid},
                 {"start_time", p.proxy->start_time}};
    nlohmann::json out = {
        {"version", kRecordVersion},
        {"id", p.id},
        {"netns", p.netns},
        {"netns_inode", p.netns_inode},
        {"bridge", p.network.bridge},
        {"subnet", p.network.subnet.str()},
        {"gateway", p.network.gateway.str()},
        {"ifname", p.ifname},
        {"host_veth", p.host_veth},
        {"address", p.address.str()},
        {"mappings", std::move(maps)},
        {"proxy", std::move(proxy)},
        {"cni_network", p.cni_network ? nlohmann::json(*p.cni_network) : nlohmann::json()},
        {"oci",
         p.oci ? nlohmann::json{{"bundle", p.oci->bundle}, {"pid", p.oci->pid}} : nlohmann::json()},
        {"made_by", p.made_by == Publication::MadeBy::cli        ? "cli"
                    : p.made_by == Publication::MadeBy::oci_hook ? "oci-hook"
                    : p.made_by == Publication::MadeBy::cni      ? "cni"
                                                                 : "unknown"},
        {"phase", p.phase == Publication::Phase::pending    ? "pending"
                  : p.phase == Publication::Phase::removing ? "removing"
                                                            : "published"}};
    if (p.network.subnet6) {
        out["subnet6"] = p.network.subnet6->str();
        out["gateway6"] = p.network.gateway6.str();
    }
    if (p.address6) out["address6"] = p.address6->str();
    if (!p.pass_firewalls) out["firewall"] = "none";
    if (p.rewrite) out["loopback"] = "kernel";
    return out;
}

Publication from_record(const nlohmann::json& j, const std::string& origin) {
    try {
        if (json_integer<int>(j, "version") != kRecordVersion)
            throw std::invalid_argument("unknown record version " + j.at("version").dump());
        Publication p;
        p.id = j.at("id").get<std::string>();
        p.netns = j.at("netns").get<std::string>();
        p.netns_inode = json_integer<std::uint64_t>(j, "netns_inode");
        p.network.bridge = j.at("bridge").get<std::string>();
        auto subnet = Cidr::parse(j.at("subnet").get<std::string>());
        if (!subnet) throw std::invalid_argument("bad subnet");
        p.network.subnet = *subnet;
        p.network.gateway = address_field(j, "gateway");
        p.ifname = j.at("ifname").get<std::string>();
        p.host_veth = j.at("host_veth").get<std::string>();
        p.address = address_field(j, "address");
        // IPv6 came with 0.5; records without it are IPv4 only.
        if (j.contains("subnet6")) {
            auto subnet6 = Cidr::parse(j.at("subnet6").get<std::string>());
            if (!subnet6 || subnet6->address.is_v4()) throw std::invalid_argument("bad subnet6");
            p.network.subnet6 = *subnet6;
            p.network.gateway6 = address_field(j, "gateway6");
        }
        if (j.contains("address6")) {
            p.address6 = address_field(j, "address6");
            if (!p.network.subnet6 || !p.network.subnet6->contains(*p.address6))
                throw std::invalid_argument("address6 outside subnet6");
        }
        for (const auto& m : j.at("mappings")) {
            Mapping out;
            auto ip = m.at("host_ip").get<std::string>();
            if (!ip.empty()) {
                out.host_ip = IpAddress::parse(ip);
                if (!out.host_ip) throw std::invalid_argument("bad host_ip " + ip);
            }
            auto proto = parse_proto(m.at("protocol").get<std::string>());
            if (!proto) throw std::invalid_argument("bad protocol");
            out.proto = *proto;
            out.host_port = json_integer<std::uint16_t>(m, "host_port");
            out.container_port = json_integer<std::uint16_t>(m, "container_port");
            out.count = json_integer<std::uint32_t>(m, "count");
            if (out.count == 0 || std::uint32_t{out.host_port} + out.count > 65536 ||
                std::uint32_t{out.container_port} + out.count > 65536)
                throw std::invalid_argument("bad port run");
            p.mappings.push_back(out);
        }
        // Records before 0.3 have no "cni_network".
        if (auto it = j.find("cni_network"); it != j.end() && !it->is_null())
            p.cni_network = it->get<std::string>();
        // Records before 0.6 have no "made_by".
        if (auto it = j.find("made_by"); it != j.end()) {
            const auto by = it->get<std::string>();
            if (by == "cli")
                p.made_by = Publication::MadeBy::cli;
            else if (by == "oci-hook")
                p.made_by = Publication::MadeBy::oci_hook;
            else if (by == "cni")
                p.made_by = Publication::MadeBy::cni;
            else if (by != "unknown")
                throw std::invalid_argument("unknown made_by " + by);
        }
        // Records before 0.7 have no "firewall": portpub left other firewalls alone then,
        // and lets them through now.
        if (auto it = j.find("firewall"); it != j.end())
            p.pass_firewalls =
                parse_firewall_mode(it->get<std::string>(), "firewall") == FirewallMode::automatic;
        // Records before 0.8 have no "loopback": the proxy served it.
        if (auto it = j.find("loopback"); it != j.end()) {
            if (it->get<std::string>() != "kernel")
                throw std::invalid_argument("unknown loopback " + it->dump());
            p.rewrite = true;
        }
        // Records before 0.6 have no "oci".
        if (auto it = j.find("oci"); it != j.end() && !it->is_null())
            p.oci = OciOrigin{it->at("bundle").get<std::string>(),
                              json_integer<std::int64_t>(*it, "pid")};
        // Records before 0.4 have no "phase": they were written once published.
        if (auto it = j.find("phase"); it != j.end()) {
            const auto phase = it->get<std::string>();
            if (phase == "pending")
                p.phase = Publication::Phase::pending;
            else if (phase == "removing")
                p.phase = Publication::Phase::removing;
            else if (phase != "published")
                throw std::invalid_argument("unknown phase " + phase);
        }
        if (const auto& proxy = j.at("proxy"); !proxy.is_null()) {
            ProxyInfo info;
            info.listen4 = json_integer<std::uint16_t>(proxy, "listen4");
            info.listen6 = json_integer<std::uint16_t>(proxy, "listen6");
            // Records of 0.1 before "ipv6" was kept: an IPv6 listener meant IPv6.
            info.ipv6 = proxy.value("ipv6", info.listen6 != 0);
            info.reserve = proxy.at("reserve").get<bool>();
            info.runtime_holds_ports = proxy.value("runtime_holds_ports", false);
            info.udp_timeout = json_integer<std::uint32_t>(proxy, "udp_timeout");
            info.pid = json_integer<std::int32_t>(proxy, "pid");
            info.start_time = json_integer<std::uint64_t>(proxy, "start_time");
            p.proxy = info;
        }
        check_as_portpub_makes_it(p);
        return p;
    } catch (const Error& e) {
        throw Error("record " + origin + " is not one portpub wrote (" + e.what() + ")");
    } catch (const nlohmann::json::exception& e) {
        throw Error("record " + origin + " is malformed (" + e.what() + ")");
    } catch (const std::invalid_argument& e) {
        throw Error("record " + origin + " is malformed (" + e.what() + ")");
    }
}

nlohmann::json to_report(const Publication& p) {
    nlohmann::json maps = nlohmann::json::array();
    for (const auto& m : listed_mappings(p)) {
        for (std::uint32_t i = 0; i < m.count; ++i)
            maps.push_back({{"host_ip", m.host_ip->str()},
                            {"host_port", m.host_port + i},
                            {"container_port", m.container_port + i},
                            {"protocol", proto_name(m.proto)}});
    }
    nlohmann::json out = {{"id", p.id},
                          {"netns", p.netns},
                          {"address", p.address.str()},
                          {"bridge", p.network.bridge},
                          {"subnet", p.network.subnet.str()},
                          {"gateway", p.network.gateway.str()},
                          {"ifname", p.ifname},
                          {"mappings", std::move(maps)},
                          {"proxy", p.proxy ? nlohmann::json{{"pid", p.proxy->pid},
                                                             {"listen4", p.proxy->listen4},
                                                             {"listen6", p.proxy->listen6},
                                                             {"reserve", p.proxy->reserve}}
                                            : nlohmann::json(nullptr)},
                          {"loopback", loopback_service(p)}};
    if (p.address6) {
        out["address6"] = p.address6->str();
        out["subnet6"] = p.network.subnet6->str();
        out["gateway6"] = p.network.gateway6.str();
    }
    return out;
}

}  // namespace portpub
