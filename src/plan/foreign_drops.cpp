// What of the firewalls beside portpub drops a network's forwarded traffic,
// from what the kernel layer read of them: each base chain on the forward
// hook that drops by default or ends with a drop, unless it accepts the
// bridge's traffic in both directions first; firewalld by its zones.
#include "portpub/foreign_drops.hpp"

#include <algorithm>

#include "portpub/error.hpp"

namespace portpub {

FirewallMode parse_firewall_mode(const std::string& text, const std::string& where) {
    if (text == "auto") return FirewallMode::automatic;
    if (text == "none") return FirewallMode::none;
    throw Error(where + " '" + shown(text) +
                "' is not a firewall mode: use auto (let the traffic through the firewalls "
                "beside portpub) or none (leave them alone)");
}

std::string iptables_comment(const std::string& bridge) {
    return "portpub " + bridge;
}

namespace {

bool accepted(const std::set<std::string>& patterns, const std::string& name) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
        if (!p.empty() && p.back() == '+')
            return name.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0;
        return p == name;
    });
}

bool has_prefix(const std::vector<std::string>& names, const std::string& prefix) {
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
}

// Who made the chain, as its table's other chains tell.
std::string maker(const ForwardChain& c) {
    if (c.kind != ForwardChain::Kind::nftables) {
        std::string tool =
            c.kind == ForwardChain::Kind::iptables_legacy ? "iptables-legacy" : "iptables";
        if (has_prefix(c.table_chains, "ufw-") || has_prefix(c.table_chains, "ufw6-"))
            return "ufw (" + tool + ")";
        if (has_prefix(c.table_chains, "DOCKER")) return "Docker (" + tool + ")";
        return tool;
    }
    if (c.family == "inet" && c.table == "firewalld") return "firewalld";
    return "nftables";
}

std::vector<std::string> commands_for(const ForwardChain& c, const std::string& bridge, bool in,
                                      bool out) {
    std::vector<std::string> commands;
    auto add = [&](bool missing, const char* flag, const char* key) {
        if (!missing) return;
        switch (c.kind) {
            case ForwardChain::Kind::iptables_nft:
            case ForwardChain::Kind::iptables_legacy: {
                std::string tool = c.family == "ip6" ? "ip6tables" : "iptables";
                if (c.kind == ForwardChain::Kind::iptables_legacy) tool += "-legacy";
                commands.push_back(tool + " -I FORWARD " + flag + " " + bridge + " -j ACCEPT");
                break;
            }
            case ForwardChain::Kind::nftables:
                commands.push_back("nft insert rule " + c.family + " " + c.table + " " + c.chain +
                                   " " + key + " \"" + bridge + "\" accept");
                break;
        }
    };
    add(!in, "-i", "iifname");
    add(!out, "-o", "oifname");
    return commands;
}

}  // namespace

const ForwardChain* iptables_forward(const ForeignFirewalls& fw, bool ipv6) {
    for (const auto& c : fw.chains)
        if (c.kind == ForwardChain::Kind::iptables_nft && c.family == (ipv6 ? "ip6" : "ip"))
            return &c;
    return nullptr;
}

bool wants_iptables_accepts(const ForeignFirewalls& fw, bool ipv6) {
    return fw.iptables_nft_installed || iptables_forward(fw, ipv6);
}

bool has_iptables_accepts(const ForeignFirewalls& fw, bool ipv6, const std::string& bridge) {
    const auto* c = iptables_forward(fw, ipv6);
    return c && accepted(c->accepts_in, bridge) && accepted(c->accepts_out, bridge);
}

std::vector<ForeignDrop> foreign_drops(const ForeignFirewalls& fw, const Network& net) {
    std::vector<ForeignDrop> drops;
    const std::string& bridge = net.bridge;
    for (const auto& c : fw.chains) {
        const bool v6 = c.family == "ip6";
        if (c.family != "inet" && c.family != "ip" && !v6) continue;
        if (v6 && !net.subnet6) continue;  // the network has no IPv6 traffic
        if (fw.firewalld.running && c.family == "inet" && c.table == "firewalld")
            continue;  // its zones decide: see below
        if (!c.policy_drop && c.final_drop.empty()) continue;
        const bool in = accepted(c.accepts_in, bridge), out = accepted(c.accepts_out, bridge);
        if (in && out) continue;
        ForeignDrop d;
        d.firewall = maker(c);
        d.remedy = c.kind == ForwardChain::Kind::iptables_nft
                       ? ForeignDrop::Remedy::iptables_accepts
                       : ForeignDrop::Remedy::by_hand;
        d.ipv6_only = v6;
        d.what = d.firewall + ": chain " + c.chain + " of table " + c.family + " " + c.table +
                 (c.policy_drop ? " drops by default (policy drop)"
                                : " ends with a rule that does " + c.final_drop) +
                 ", so the " + (v6 ? "IPv6 " : "") + "traffic forwarded to and from bridge " +
                 bridge + " is dropped";
        d.commands = commands_for(c, bridge, in, out);
        drops.push_back(std::move(d));
    }
    if (fw.firewalld.running) {
        const auto zone = fw.firewalld.zone_of.find(bridge);
        if (zone == fw.firewalld.zone_of.end() || zone->second.empty()) {
            ForeignDrop d;
            d.firewall = "firewalld";
            d.remedy = ForeignDrop::Remedy::firewalld_zone;
            d.what = "firewalld: bridge " + bridge +
                     " is in no zone, so firewalld rejects the containers' outbound traffic";
            d.commands = {"firewall-cmd --zone=" + std::string(kFirewalldZone) +
                          " --add-interface=" + bridge};
            drops.push_back(std::move(d));
        }
        if (fw.firewalld.strict_forward_ports) {
            ForeignDrop d;
            d.firewall = "firewalld";
            d.what =
                "firewalld: StrictForwardPorts=yes rejects the traffic to published ports, "
                "which firewalld did not forward itself";
            d.commands = {
                "set StrictForwardPorts=no in /etc/firewalld/firewalld.conf, then "
                "firewall-cmd --reload"};
            drops.push_back(std::move(d));
        }
    }
    return drops;
}

std::string commands_text(const std::vector<ForeignDrop>& drops) {
    std::string text;
    for (const auto& d : drops)
        for (const auto& c : d.commands)
            text += (text.empty() ? "" : "; ") + c;
    return text;
}

}  // namespace portpub
