// The plan of an `up`, from the request, the records and the host's port facts: specs, names
// and subnets checked, an earlier publication of the id replaced only for the same namespace
// or a gone one, ports and addresses allocated, and the proxy asked for where it is needed.
#include "portpub/planner.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include "portpub/error.hpp"
#include "portpub/ipam.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/proxy_plan.hpp"

namespace portpub {

std::string derive_id(const std::string& path, std::uint64_t inode) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
        auto parent_start = path.rfind('/', slash - 1);
        auto parent =
            path.substr(parent_start == std::string::npos ? 0 : parent_start + 1,
                        slash - (parent_start == std::string::npos ? 0 : parent_start + 1));
        auto base = path.substr(slash + 1);
        if (parent == "netns") {
            try {
                validate_id(base);
                return base;
            } catch (const Error&) {
                // fall through to the inode form
            }
        }
    }
    return "netns-" + std::to_string(inode);
}

std::string publication_id(const UpRequest& req, const NetnsIdentity& ns) {
    return req.id ? *req.id : derive_id(ns.path, ns.inode);
}

namespace {

Cidr parse_subnet(const std::string& text) {
    auto subnet = Cidr::parse(text);
    if (!subnet)
        throw Error("invalid --subnet '" + shown(text) +
                    "': expected an IPv4 prefix such as 10.77.0.0/16");
    if (!subnet->address.is_v4())
        throw Error("invalid --subnet '" + text +
                    "': this version gives containers IPv4 only; use an IPv4 prefix");
    if (!subnet->is_network())
        throw Error("invalid --subnet '" + text + "': host bits are set; did you mean " +
                    subnet->network().str() + "/" + std::to_string(subnet->prefix) + "?");
    if (subnet->prefix > 30)
        throw Error("invalid --subnet '" + text + "': a /" + std::to_string(subnet->prefix) +
                    " leaves no room for a gateway and a container; use /30 or shorter");
    for (const char* reserved : {"0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"})
        if (subnet->overlaps(*Cidr::parse(reserved)))
            throw Error("invalid --subnet '" + text + "': it overlaps " + reserved +
                        ", which cannot hold containers");
    return *subnet;
}

Cidr parse_subnet6(const std::string& text) {
    auto subnet = Cidr::parse(text);
    if (!subnet || subnet->address.is_v4())
        throw Error("invalid --subnet6 '" + shown(text) +
                    "': expected an IPv6 prefix such as fd00:1:2:3::/64");
    if (!subnet->is_network())
        throw Error("invalid --subnet6 '" + text + "': host bits are set; did you mean " +
                    subnet->network().str() + "/" + std::to_string(subnet->prefix) + "?");
    if (subnet->prefix > 126)
        throw Error("invalid --subnet6 '" + text + "': a /" + std::to_string(subnet->prefix) +
                    " leaves no room for a gateway and a container; use /64 (or up to /126)");
    for (const char* reserved : {"::/8", "fe80::/10", "ff00::/8"})
        if (subnet->overlaps(*Cidr::parse(reserved)))
            throw Error("invalid --subnet6 '" + text + "': it overlaps " + reserved +
                        ", which cannot hold containers");
    return *subnet;
}

// Without the proxy, mappings only it could serve fail here, before any
// change, instead of being accepted and silently not working.
void check_servable(const PortSpec& spec, bool proxy, bool ipv6) {
    if (proxy || !spec.host_ip || spec.proto == Proto::sctp) return;
    const auto& ip = *spec.host_ip;
    if ((!ip.is_v4() && !ipv6) || ip.is_loopback())
        throw Error("host address " + ip.url_str() + " in '" + spec.text +
                    "' is served by the userland proxy only (" +
                    (ip.is_v4() ? "kernel NAT cannot serve loopback without route_localnet, which "
                                  "portpub never sets"
                                : "the container has IPv4 only; --ipv6 gives it IPv6") +
                    "); drop --no-proxy, or publish on another host address");
}

void check_network(const Network& net, const std::vector<Publication>& others) {
    auto v6 = [](const Network& n) { return n.subnet6 ? n.subnet6->str() : "no IPv6"; };
    for (const auto& p : others) {
        if (p.network.bridge == net.bridge && p.network.subnet == net.subnet &&
            p.network.subnet6 != net.subnet6)
            throw Error("bridge " + net.bridge + " serves " + v6(p.network) + " (container " +
                        p.id + "), not " + v6(net) + "; every container of a bridge has the " +
                        "same IPv6 setting: " +
                        (p.network.subnet6 ? "pass --subnet6 " + p.network.subnet6->str()
                                           : std::string("drop --ipv6 and --subnet6")) +
                        ", or use another --bridge");
        if (p.network.bridge != net.bridge && p.network.subnet6 && net.subnet6 &&
            p.network.subnet6->overlaps(*net.subnet6))
            throw Error("subnet " + net.subnet6->str() + " overlaps " + p.network.subnet6->str() +
                        " of bridge " + p.network.bridge + " (container " + p.id +
                        "); pick another --subnet6 or use --bridge " + p.network.bridge);
        if (p.network.bridge == net.bridge && p.network.subnet != net.subnet)
            throw Error("bridge " + net.bridge + " already serves subnet " +
                        p.network.subnet.str() + " (container " + p.id + "); pass --subnet " +
                        p.network.subnet.str() + " or another --bridge");
        if (p.network.bridge != net.bridge && p.network.subnet.overlaps(net.subnet))
            throw Error("subnet " + net.subnet.str() + " overlaps " + p.network.subnet.str() +
                        " of bridge " + p.network.bridge + " (container " + p.id +
                        "); pick another --subnet or use --bridge " + p.network.bridge);
    }
}

}  // namespace

std::optional<Cidr> requested_subnet6(const UpRequest& req) {
    if (req.subnet6) return parse_subnet6(*req.subnet6);
    if (req.ipv6) return default_subnet6(req.bridge);
    return std::nullopt;
}

namespace {

std::vector<PortSpec> parse_specs(const UpRequest& req) {
    std::vector<PortSpec> specs;
    specs.reserve(req.specs.size());
    for (const auto& text : req.specs) {
        specs.push_back(parse_port_spec(text));
        check_servable(specs.back(), req.proxy,
                       req.ipv6 || req.subnet6 || (req.attached && req.attached->address6));
    }
    return specs;
}

}  // namespace

void validate_request(const UpRequest& req) {
    parse_specs(req);
    validate_ifname(req.bridge, "--bridge");
    validate_ifname(req.ifname, "--ifname");
    parse_subnet(req.subnet);
    requested_subnet6(req);
    if (req.id) validate_id(*req.id);
    validate_netns_path(req.netns);
    if (req.cni_network) validate_network_name(*req.cni_network);
    // The bundle goes into the record, which then must read back.
    if (req.oci && printable(req.oci->bundle) != req.oci->bundle)
        throw Error("the OCI state's bundle '" + shown(req.oci->bundle) +
                    "' has control characters; name the bundle's directory without them");
}

Plan plan_up(const UpRequest& req, const NetnsIdentity& ns,
             const std::vector<Publication>& existing, const HostPortFacts& facts,
             const std::function<bool(const Publication&)>& namespace_alive,
             const UnrecordedUse& unrecorded) {
    auto specs = parse_specs(req);
    validate_ifname(req.bridge, "--bridge");
    validate_ifname(req.ifname, "--ifname");
    for (const auto& spec : specs) {
        // Kernel DNAT matches only the host's own addresses: any other would
        // be published and never answer.
        if (spec.host_ip && !spec.host_ip->is_unspecified() && facts.is_local &&
            !facts.is_local(*spec.host_ip))
            throw Error("host address " + spec.host_ip->str() + " in '" + spec.text +
                        "' is not an address of this host; use one of its addresses or leave "
                        "the address out");
    }

    Plan plan;
    auto& pub = plan.publication;
    pub.id = publication_id(req, ns);
    validate_id(pub.id);
    pub.netns = ns.path;
    pub.netns_inode = ns.inode;
    pub.ifname = req.ifname;
    pub.cni_network = req.cni_network;
    pub.oci = req.oci;
    pub.pass_firewalls = req.pass_firewalls;
    pub.made_by = req.oci           ? Publication::MadeBy::oci_hook
                  : req.cni_network ? Publication::MadeBy::cni
                                    : Publication::MadeBy::cli;
    if (req.attached) {
        pub.network = req.attached->network;
    } else {
        pub.network.bridge = req.bridge;
        pub.network.subnet = parse_subnet(req.subnet);
        pub.network.gateway = default_gateway(pub.network.subnet);
        pub.network.subnet6 = requested_subnet6(req);
        if (pub.network.subnet6) pub.network.gateway6 = default_gateway(*pub.network.subnet6);
    }

    std::vector<Publication> others;
    for (const auto& p : existing) {
        if (p.id == pub.id) {
            // The same id again replaces the earlier publication only for the
            // same namespace, or when that namespace is gone: never a live
            // container's.
            if (p.netns_inode != ns.inode && (!namespace_alive || namespace_alive(p)))
                throw Error("container id " + pub.id + " is already used for namespace " + p.netns +
                            "; pass another --id, or run 'portpub down --id " + pub.id + "' first");
            plan.replaces = p;
            continue;
        }
        if (p.netns_inode == ns.inode && ns.inode != 0)
            throw Error("namespace " + ns.path + " is already published as container " + p.id +
                        "; run 'portpub down --id " + p.id + "' first, or pass --id " + p.id +
                        " to replace it");
        others.push_back(p);
    }
    check_network(pub.network, others);

    std::vector<PublishedPort> taken;
    for (const auto& p : others)
        for (const auto& m : p.mappings)
            taken.push_back({p.id, m});
    pub.mappings = allocate_ports(specs, taken, facts);

    if (req.attached) {
        pub.address = req.attached->address;  // host_veth stays empty: no link of portpub's
        pub.address6 = req.attached->address6;
    } else {
        if (plan.replaces && plan.replaces->network == pub.network) {
            pub.address = plan.replaces->address;  // a container keeps its address across `up`s
            pub.address6 = plan.replaces->address6;
        } else {
            std::set<IpAddress> used = unrecorded.addresses, used6;
            for (const auto& p : others) {
                if (p.network.subnet == pub.network.subnet) used.insert(p.address);
                if (p.address6) used6.insert(*p.address6);
            }
            pub.address = allocate_address(pub.network.subnet, pub.network.gateway, used);
            // An IPv4 address in use shows as its veth; an IPv6 one only in
            // its record.
            if (pub.network.subnet6 && unrecorded.records_incomplete)
                throw Error("a record portpub cannot use may hold any IPv6 address of " +
                            pub.network.subnet6->str() +
                            ", so none is given while it is there: put it right or move it away "
                            "(portpub check names it)");
            if (pub.network.subnet6)
                pub.address6 = allocate_address(*pub.network.subnet6, pub.network.gateway6, used6);
        }
        pub.host_veth = host_veth_name(pub.address);
    }
    // Whether the kernel can is for `up` to find out; the proxy serves otherwise.
    pub.rewrite = req.rewrite && !rewrite_entries(pub).empty();
    if (req.proxy && needs_proxy(pub)) {
        ProxyInfo proxy;
        proxy.reserve = req.reserve && !req.runtime_holds_ports;
        proxy.runtime_holds_ports = req.runtime_holds_ports;
        proxy.udp_timeout = req.udp_timeout;
        pub.proxy = proxy;  // listeners and process come when `up` makes them
    }
    return plan;
}

}  // namespace portpub
