// Links, addresses and routes through libnl-route-3: the bridge made or reused (its MAC pinned,
// no IPv6 duplicate address detection), the veth pair with its peer set up through a socket
// opened in the container's namespace, and the checks and repairs of both sides.
#include "portpub/links.hpp"

#include <net/if.h>

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "portpub/error.hpp"
#include "portpub/naming.hpp"
#include "portpub/planner.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

// Owning pointers for libnl objects.
struct LinkPut {
    void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrPut {
    void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrPut {
    void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RoutePut {
    void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct CacheFree {
    void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct VethRelease {
    void operator()(rtnl_link* l) const { rtnl_link_veth_release(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrPut>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using CachePtr = std::unique_ptr<nl_cache, CacheFree>;

[[noreturn]] void fail(const std::string& what, int nlerr) {
    std::string hint;
    if (nlerr == -NLE_PERM) hint = " (portpub needs CAP_NET_ADMIN: run it as root)";
    throw Error(what + ": " + nl_geterror(nlerr) + hint);
}

LinkPtr get_link(nl_sock* sk, const std::string& name) {
    rtnl_link* link = nullptr;
    int err = rtnl_link_get_kernel(sk, 0, name.c_str(), &link);
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return nullptr;
    if (err < 0) fail("cannot look up interface " + name, err);
    return LinkPtr(link);
}

NlAddrPtr nl_address(const IpAddress& a, int prefix) {
    nl_addr* out = nl_addr_build(a.is_v4() ? AF_INET : AF_INET6, a.data(), a.size());
    if (!out) throw Error("out of memory");
    nl_addr_set_prefixlen(out, prefix);
    return NlAddrPtr(out);
}

void set_up(nl_sock* sk, rtnl_link* link, const std::string& where) {
    LinkPtr change(must(rtnl_link_alloc()));
    rtnl_link_set_flags(change.get(), IFF_UP);
    int err = rtnl_link_change(sk, link, change.get(), 0);
    if (err < 0) fail("cannot bring up " + where, err);
}

void add_address(nl_sock* sk, int ifindex, const IpAddress& a, int prefix,
                 const std::string& where) {
    AddrPtr addr(must(rtnl_addr_alloc()));
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    auto local = nl_address(a, prefix);
    rtnl_addr_set_local(addr.get(), local.get());
    if (a.is_v4() && prefix < 31) {
        auto brd = nl_address(Cidr{a, prefix}.last(), prefix);
        rtnl_addr_set_broadcast(addr.get(), brd.get());
    }
    // No duplicate address detection: the address is portpub's to give, and
    // DAD would leave it unusable ("tentative") for a second or more.
    if (!a.is_v4()) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
    int err = rtnl_addr_add(sk, addr.get(), 0);
    if (err < 0 && err != -NLE_EXIST) {
        std::string hint;
        if (!a.is_v4() && (err == -NLE_PERM || err == -NLE_NOACCESS))
            hint = " (is IPv6 disabled there? see net.ipv6.conf.*.disable_ipv6)";
        fail("cannot add address " + a.str() + "/" + std::to_string(prefix) + " to " + where + hint,
             err);
    }
}

// The addresses (with prefix) of one family on one interface; IPv6
// link-local ones (fe80::/10), which every interface has, left out.
std::vector<Cidr> addresses_of(nl_sock* sk, int ifindex, Family family = Family::v4) {
    nl_cache* raw = nullptr;
    int err = rtnl_addr_alloc_cache(sk, &raw);
    if (err < 0) fail("cannot list addresses", err);
    CachePtr cache(raw);
    std::vector<Cidr> out;
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* a = reinterpret_cast<rtnl_addr*>(obj);
        const int af = family == Family::v4 ? AF_INET : AF_INET6;
        if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != af) continue;
        nl_addr* local = rtnl_addr_get_local(a);
        if (!local || nl_addr_get_len(local) != (family == Family::v4 ? 4u : 16u)) continue;
        auto ip = IpAddress::from_bytes(
            family, static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(local)));
        if (Cidr{*IpAddress::parse("fe80::"), 10}.contains(ip)) continue;
        out.push_back({ip, rtnl_addr_get_prefixlen(a)});
    }
    return out;
}

// Bridge port flag through RTM_SETLINK of family AF_BRIDGE (what `bridge link
// set dev X hairpin on` sends); libnl-route has no call for a port's mode.
void set_hairpin(nl_sock* sk, int ifindex, const std::string& name) {
    nl_msg* msg = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    if (!msg) throw Error("out of memory");
    ifinfomsg ifi{};
    ifi.ifi_family = AF_BRIDGE;
    ifi.ifi_index = ifindex;
    nlattr* protinfo = nullptr;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        !(protinfo = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)) ||
        nla_put_u8(msg, IFLA_BRPORT_MODE, 1) < 0) {
        nlmsg_free(msg);
        throw Error("cannot build the hairpin request for " + name);
    }
    nla_nest_end(msg, protinfo);
    int err = nl_send_sync(sk, msg);  // frees msg
    if (err < 0) fail("cannot turn hairpin mode on for bridge port " + name, err);
}

// No duplicate address detection on a bridge portpub makes. The kernel gives
// the bridge its IPv6 link-local address when the first port brings carrier,
// and with DAD that address stays tentative for one to two seconds. The
// neighbour solicitations the bridge sends for a container's address take
// their source from the packet being sent only when that source is an
// address of the bridge; for everything portpub forwards (other hosts, the
// host's own addresses after DNAT, hairpin) it is not, so they need the
// link-local one, and while it is tentative none is sent: the first IPv6
// connection to a published port waited two seconds or more, and failed
// when DAD was slow. Written before the bridge is up, so that the address is
// made without DAD; a no-op where IPv6 is disabled (no such setting).
void skip_duplicate_address_detection(const std::string& bridge) {
    const std::string key = "net/ipv6/conf/" + bridge + "/accept_dad";
    if (read_sysctl(key)) write_sysctl(key, "0");
}

}  // namespace

RouteSocket::RouteSocket() {
    sk_ = nl_socket_alloc();
    if (!sk_) throw Error("out of memory");
    int err = nl_connect(sk_, NETLINK_ROUTE);
    if (err < 0) {
        nl_socket_free(sk_);
        throw Error(std::string("cannot open a route netlink socket: ") + nl_geterror(err));
    }
}

RouteSocket::~RouteSocket() {
    nl_socket_free(sk_);
}

HostState::Bridge NetlinkLinks::ensure_bridge(const Network& net, bool pin_mac) {
    nl_sock* sk = host();
    HostState::Bridge did;
    auto bridge = get_link(sk, net.bridge);
    if (!bridge) {
        LinkPtr fresh(must(rtnl_link_bridge_alloc()));
        rtnl_link_set_name(fresh.get(), net.bridge.c_str());
        int err = rtnl_link_add(sk, fresh.get(), NLM_F_CREATE | NLM_F_EXCL);
        if (err < 0) fail("cannot create bridge " + net.bridge, err);
        did.created = true;
        bridge = get_link(sk, net.bridge);
        if (!bridge) throw Error("bridge " + net.bridge + " vanished right after it was created");
    } else {
        const char* type = rtnl_link_get_type(bridge.get());
        if (!type || std::strcmp(type, "bridge") != 0)
            throw Error("interface " + net.bridge +
                        " exists and is not a bridge; pass another --bridge");
    }
    // From here on a failure undoes what this call did before throwing: the
    // caller learns what was done only when it returns.
    try {
        if (did.created) skip_duplicate_address_detection(net.bridge);
        configure_bridge(sk, bridge.get(), net, pin_mac, did);
    } catch (...) {
        try {
            if (did.created) {
                delete_link(net.bridge);
            } else {
                if (did.address_added) remove_address(net.bridge, {net.gateway, net.subnet.prefix});
                if (did.address6_added)
                    remove_address(net.bridge, {net.gateway6, net.subnet6->prefix});
            }
        } catch (const Error&) {
            // keep the first error: it says what went wrong
        }
        throw;
    }
    return did;
}

HostState::Bridge NetlinkLinks::bridge_changes(const Network& net) {
    nl_sock* sk = host();
    auto bridge = get_link(sk, net.bridge);
    HostState::Bridge would;
    if (!bridge) {
        would.created = true;
        return would;
    }
    const Cidr want{net.gateway, net.subnet.prefix};
    const auto have = addresses_of(sk, rtnl_link_get_ifindex(bridge.get()));
    would.address_added = std::find(have.begin(), have.end(), want) == have.end();
    if (net.subnet6) {
        const Cidr want6{net.gateway6, net.subnet6->prefix};
        const auto have6 = addresses_of(sk, rtnl_link_get_ifindex(bridge.get()), Family::v6);
        would.address6_added = std::find(have6.begin(), have6.end(), want6) == have6.end();
    }
    would.brought_up = !(rtnl_link_get_flags(bridge.get()) & IFF_UP);
    return would;
}

std::vector<std::string> NetlinkLinks::ports_of(const std::string& bridge_name) {
    nl_sock* sk = host();
    auto bridge = get_link(sk, bridge_name);
    if (!bridge) return {};
    const int master = rtnl_link_get_ifindex(bridge.get());
    nl_cache* raw = nullptr;
    int err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &raw);
    if (err < 0) fail("cannot list interfaces", err);
    CachePtr cache(raw);
    std::vector<std::string> out;
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* link = reinterpret_cast<rtnl_link*>(obj);
        if (rtnl_link_get_master(link) == master) out.emplace_back(rtnl_link_get_name(link));
    }
    return out;
}

std::vector<std::string> NetlinkLinks::host_veths() {
    nl_cache* raw = nullptr;
    int err = rtnl_link_alloc_cache(host(), AF_UNSPEC, &raw);
    if (err < 0) fail("cannot list interfaces", err);
    CachePtr cache(raw);
    std::vector<std::string> out;
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(obj));
        if (name && is_host_veth_name(name)) out.emplace_back(name);
    }
    return out;
}

std::vector<std::string> NetlinkLinks::bridges_in_use() {
    nl_cache* raw = nullptr;
    int err = rtnl_link_alloc_cache(host(), AF_UNSPEC, &raw);
    if (err < 0) fail("cannot list interfaces", err);
    CachePtr cache(raw);
    std::set<std::string> out;
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        const int master = rtnl_link_get_master(reinterpret_cast<rtnl_link*>(obj));
        if (master <= 0) continue;
        if (auto* m = rtnl_link_get(cache.get(), master)) {
            const char* type = rtnl_link_get_type(m);
            if (type && std::string(type) == "bridge") out.insert(rtnl_link_get_name(m));
            rtnl_link_put(m);
        }
    }
    return {out.begin(), out.end()};
}

void NetlinkLinks::configure_bridge(nl_sock* sk, rtnl_link* bridge, const Network& net,
                                    bool pin_mac, HostState::Bridge& did) {
    const int index = rtnl_link_get_ifindex(bridge);
    const Cidr want{net.gateway, net.subnet.prefix};
    bool has = false;
    for (const auto& a : addresses_of(sk, index)) {
        if (a == want) {
            has = true;
        } else if (!did.created) {
            throw Error("bridge " + net.bridge + " has address " + a.str() + ", not " + want.str() +
                        "; pass the --subnet it serves, or another --bridge");
        }
    }
    if (!has) {
        add_address(sk, index, net.gateway, net.subnet.prefix, "bridge " + net.bridge);
        did.address_added = true;
    }
    if (net.subnet6) {
        const Cidr want6{net.gateway6, net.subnet6->prefix};
        bool has6 = false;
        for (const auto& a : addresses_of(sk, index, Family::v6)) {
            if (a == want6) {
                has6 = true;
            } else if (!did.created && net.subnet6->contains(a.address)) {
                throw Error("bridge " + net.bridge + " has address " + a.str() + ", not " +
                            want6.str() + "; pass the --subnet6 it serves, or another --bridge");
            }
        }
        if (!has6) {
            add_address(sk, index, net.gateway6, net.subnet6->prefix, "bridge " + net.bridge);
            did.address6_added = true;
        }
    }
    if (pin_mac) {
        if (nl_addr* mac = rtnl_link_get_addr(bridge)) {
            LinkPtr change(must(rtnl_link_alloc()));
            rtnl_link_set_addr(change.get(), mac);
            int err = rtnl_link_change(sk, bridge, change.get(), 0);
            if (err < 0) fail("cannot fix the MAC address of bridge " + net.bridge, err);
        }
    }
    if (!(rtnl_link_get_flags(bridge) & IFF_UP)) {
        set_up(sk, bridge, "bridge " + net.bridge);
        did.brought_up = !did.created;
    }
}

std::optional<ForeignRoute> NetlinkLinks::foreign_route(const Cidr& subnet,
                                                        const std::string& bridge,
                                                        const std::string& leaving_bridge) {
    nl_sock* sk = host();
    auto index_of = [&](const std::string& name) {
        auto link = name.empty() ? nullptr : get_link(sk, name);
        return link ? rtnl_link_get_ifindex(link.get()) : -1;
    };
    const int bridge_index = index_of(bridge), leaving_index = index_of(leaving_bridge);
    const bool v4 = subnet.address.is_v4();
    nl_cache* raw = nullptr;
    int err = rtnl_route_alloc_cache(sk, v4 ? AF_INET : AF_INET6, 0, &raw);
    if (err < 0) fail("cannot list routes", err);
    CachePtr cache(raw);
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* r = reinterpret_cast<rtnl_route*>(obj);
        if (rtnl_route_get_table(r) != RT_TABLE_MAIN) continue;
        nl_addr* dst = rtnl_route_get_dst(r);
        if (!dst || nl_addr_get_prefixlen(dst) == 0 || nl_addr_get_len(dst) != (v4 ? 4u : 16u))
            continue;
        Cidr route{
            IpAddress::from_bytes(v4 ? Family::v4 : Family::v6,
                                  static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(dst))),
            static_cast<int>(nl_addr_get_prefixlen(dst))};
        if (!route.overlaps(subnet)) continue;
        int oif = rtnl_route_get_nnexthops(r) > 0
                      ? rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0))
                      : 0;
        // The bridge's own connected route, or one that goes with the
        // publication `up` replaces.
        if (oif == bridge_index || oif == leaving_index) continue;
        char name[IF_NAMESIZE] = "?";
        if (oif > 0) if_indextoname(static_cast<unsigned>(oif), name);
        return ForeignRoute{route, name};
    }
    return std::nullopt;
}

void NetlinkLinks::check_subnet_free(const Network& net, const std::string& leaving_bridge) {
    auto check = [&](const Cidr& subnet, const char* option) {
        if (auto r = foreign_route(subnet, net.bridge, leaving_bridge))
            throw Error("subnet " + subnet.str() + " overlaps the route " + r->route.str() +
                        " dev " + shown(r->dev) + ", which portpub does not own; pick another " +
                        option);
    };
    check(net.subnet, "--subnet");
    if (net.subnet6) check(*net.subnet6, "--subnet6");
}

std::optional<std::string> NetlinkLinks::holder_of(const Cidr& address) {
    nl_cache* raw = nullptr;
    int err = rtnl_addr_alloc_cache(host(), &raw);
    if (err < 0) fail("cannot list addresses", err);
    CachePtr cache(raw);
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* a = reinterpret_cast<rtnl_addr*>(obj);
        nl_addr* local = rtnl_addr_get_local(a);
        if (!local || rtnl_addr_get_prefixlen(a) != address.prefix ||
            nl_addr_get_len(local) != address.address.size() ||
            std::memcmp(nl_addr_get_binary_addr(local), address.address.data(),
                        address.address.size()) != 0)
            continue;
        char name[IF_NAMESIZE] = "?";
        if_indextoname(static_cast<unsigned>(rtnl_addr_get_ifindex(a)), name);
        return std::string(name);
    }
    return std::nullopt;
}

namespace {

// The interface index of the default route of `family` in the namespace of
// `sk` (0 for a route with no interface); nullopt when there is none.
std::optional<int> default_route_oif(nl_sock* sk, int family) {
    nl_cache* raw = nullptr;
    int err = rtnl_route_alloc_cache(sk, family, 0, &raw);
    if (err < 0) fail("cannot list routes", err);
    CachePtr cache(raw);
    for (auto* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* r = reinterpret_cast<rtnl_route*>(obj);
        nl_addr* dst = rtnl_route_get_dst(r);
        if (rtnl_route_get_table(r) != RT_TABLE_MAIN || (dst && nl_addr_get_prefixlen(dst) != 0))
            continue;
        return rtnl_route_get_nnexthops(r) > 0
                   ? rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0))
                   : 0;
    }
    return std::nullopt;
}

std::unique_ptr<RouteSocket> socket_in(const Netns& ns) {
    NetnsSwitch in(ns.fd());
    return std::make_unique<RouteSocket>();
}

}  // namespace

void NetlinkLinks::check_bridge(const Network& net, const std::vector<Cidr>& leaving) {
    auto bridge = get_link(host(), net.bridge);
    if (!bridge) return;  // up makes it
    const char* type = rtnl_link_get_type(bridge.get());
    if (!type || std::strcmp(type, "bridge") != 0)
        throw Error("interface " + net.bridge +
                    " exists and is not a bridge; pass another --bridge");
    const int index = rtnl_link_get_ifindex(bridge.get());
    const Cidr want{net.gateway, net.subnet.prefix};
    auto stays = [&](const Cidr& a) {
        return std::find(leaving.begin(), leaving.end(), a) == leaving.end();
    };
    for (const auto& a : addresses_of(host(), index))
        if (a != want && stays(a))
            throw Error("bridge " + net.bridge + " has address " + a.str() + ", not " + want.str() +
                        "; pass the --subnet it serves, or another --bridge");
    if (!net.subnet6) return;
    const Cidr want6{net.gateway6, net.subnet6->prefix};
    for (const auto& a : addresses_of(host(), index, Family::v6))
        if (a != want6 && net.subnet6->contains(a.address) && stays(a))
            throw Error("bridge " + net.bridge + " has address " + a.str() + ", not " +
                        want6.str() + "; pass the --subnet6 it serves, or another --bridge");
}

void NetlinkLinks::check_container_side(const Publication& p, const Netns& ns,
                                        const std::string& leaving) {
    auto inside = socket_in(ns);
    nl_sock* csk = inside->get();
    if (p.ifname != leaving && get_link(csk, p.ifname))
        throw Error("cannot create interface " + p.ifname + " in " + p.netns +
                    ": an interface of that name exists there; pass another --ifname");
    auto leaving_link = leaving.empty() ? nullptr : get_link(csk, leaving);
    const int leaving_index = leaving_link ? rtnl_link_get_ifindex(leaving_link.get()) : -1;
    auto taken = [&](int family) {
        auto oif = default_route_oif(csk, family);
        return oif && *oif != leaving_index;
    };
    if (taken(AF_INET))
        throw Error("namespace " + p.netns +
                    " already has a default route; portpub gives the "
                    "container its only one (remove it, or publish a fresh namespace)");
    if (p.address6 && taken(AF_INET6))
        throw Error("namespace " + p.netns +
                    " already has an IPv6 default route; portpub gives the container its only "
                    "one (remove it, or publish a fresh namespace)");
}

namespace {

// The container's default route of one family, via `gateway` on interface
// `index` of the namespace `csk` is in.
void add_default_route(nl_sock* csk, int index, const IpAddress& gateway, const Publication& p) {
    const bool v4 = gateway.is_v4();
    RoutePtr route(must(rtnl_route_alloc()));
    rtnl_route_set_family(route.get(), v4 ? AF_INET : AF_INET6);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
    auto any = nl_address(v4 ? IpAddress{} : *IpAddress::parse("::"), 0);
    rtnl_route_set_dst(route.get(), any.get());
    rtnl_nexthop* nh = must(rtnl_route_nh_alloc());
    auto gw = nl_address(gateway, v4 ? 32 : 128);
    rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_nh_set_ifindex(nh, index);
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
    int err = rtnl_route_add(csk, route.get(), NLM_F_CREATE | NLM_F_EXCL);
    const std::string family = v4 ? "" : "IPv6 ";
    if (err == -NLE_EXIST)
        throw Error("namespace " + p.netns + " already has an " + family +
                    "default route; portpub gives the container its only one (remove it, or "
                    "publish a fresh namespace)");
    if (err < 0)
        fail("cannot add the " + family + "default route via " + gateway.str() + " in " + p.netns,
             err);
}

// Hairpin mode of bridge port `ifindex`, read from the AF_BRIDGE view of it.
bool hairpin_on(nl_sock* sk, int ifindex) {
    nl_cache* raw = nullptr;
    int err = rtnl_link_alloc_cache(sk, AF_BRIDGE, &raw);
    if (err < 0) fail("cannot list bridge ports", err);
    CachePtr cache(raw);
    LinkPtr port(rtnl_link_get(cache.get(), ifindex));
    return port && (rtnl_link_bridge_get_flags(port.get()) & RTNL_BRIDGE_HAIRPIN_MODE);
}

// Each piece of the container's side of `p` that is not as `up` made it.
struct ContainerSide {
    bool lo_down = false, missing = false, down = false, address = false, address6 = false,
         route = false, route6 = false;
};

ContainerSide container_side(nl_sock* csk, const Publication& p) {
    ContainerSide side;
    if (auto lo = get_link(csk, "lo"); lo && !(rtnl_link_get_flags(lo.get()) & IFF_UP))
        side.lo_down = true;
    auto link = get_link(csk, p.ifname);
    if (!link) {
        side.missing = true;
        return side;
    }
    const int index = rtnl_link_get_ifindex(link.get());
    side.down = !(rtnl_link_get_flags(link.get()) & IFF_UP);
    const auto has = [&](const Cidr& want, Family f) {
        const auto all = addresses_of(csk, index, f);
        return std::find(all.begin(), all.end(), want) != all.end();
    };
    side.address = !has({p.address, p.network.subnet.prefix}, Family::v4);
    side.route = default_route_oif(csk, AF_INET) != index;
    if (p.address6) {
        side.address6 = !has({*p.address6, p.network.subnet6->prefix}, Family::v6);
        side.route6 = default_route_oif(csk, AF_INET6) != index;
    }
    return side;
}

}  // namespace

void NetlinkLinks::create_container_link(const Publication& p, const Netns& ns) {
    nl_sock* sk = host();
    auto bridge = get_link(sk, p.network.bridge);
    if (!bridge) throw Error("bridge " + p.network.bridge + " is missing");

    std::unique_ptr<rtnl_link, VethRelease> veth(must(rtnl_link_veth_alloc()));
    rtnl_link_set_name(veth.get(), p.host_veth.c_str());
    rtnl_link_set_master(veth.get(), rtnl_link_get_ifindex(bridge.get()));
    {
        LinkPtr peer(rtnl_link_veth_get_peer(veth.get()));
        rtnl_link_set_name(peer.get(), p.ifname.c_str());
        rtnl_link_set_ns_fd(peer.get(), ns.fd());
        const auto mac = container_mac(p.address);
        NlAddrPtr lladdr(must(nl_addr_build(AF_LLC, mac.data(), mac.size())));
        rtnl_link_set_addr(peer.get(), lladdr.get());
    }
    int err = rtnl_link_add(sk, veth.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err == -NLE_EXIST)
        throw Error("cannot create interface " + p.ifname + " in " + p.netns +
                    ": an interface of that name exists there; pass another --ifname");
    if (err < 0) fail("cannot create veth pair " + p.host_veth + "/" + p.ifname, err);

    auto host_end = get_link(sk, p.host_veth);
    if (!host_end) throw Error("veth " + p.host_veth + " vanished right after it was created");
    set_hairpin(sk, rtnl_link_get_ifindex(host_end.get()), p.host_veth);
    set_up(sk, host_end.get(), p.host_veth);

    // The container side, through a socket opened inside its namespace.
    auto inside = socket_in(ns);
    nl_sock* csk = inside->get();
    const std::string where = p.ifname + " in " + p.netns;
    if (auto lo = get_link(csk, "lo"); lo && !(rtnl_link_get_flags(lo.get()) & IFF_UP))
        set_up(csk, lo.get(), "lo in " + p.netns);
    auto peer = get_link(csk, p.ifname);
    if (!peer) throw Error("interface " + where + " did not appear after the veth was created");
    const int index = rtnl_link_get_ifindex(peer.get());
    add_address(csk, index, p.address, p.network.subnet.prefix, where);
    set_up(csk, peer.get(), where);
    add_default_route(csk, index, p.network.gateway, p);
    if (p.address6) {
        add_address(csk, index, *p.address6, p.network.subnet6->prefix, where);
        add_default_route(csk, index, p.network.gateway6, p);
    }
}

std::vector<std::string> NetlinkLinks::link_differences(const Publication& p, const Netns* ns) {
    std::vector<std::string> out;
    nl_sock* sk = host();
    auto host_end = get_link(sk, p.host_veth);
    if (host_end) {
        if (!(rtnl_link_get_flags(host_end.get()) & IFF_UP))
            out.push_back("veth " + p.host_veth + " is down");
        else if (rtnl_link_get_master(host_end.get()) > 0 &&  // else: not on the bridge
                 !hairpin_on(sk, rtnl_link_get_ifindex(host_end.get())))
            out.push_back("veth " + p.host_veth + " has hairpin mode off");
    }
    if (!ns || !host_end) return out;  // the container's side goes with either
    auto inside = socket_in(*ns);
    const auto side = container_side(inside->get(), p);
    const std::string where = p.ifname + " in " + p.netns;
    if (side.lo_down) out.push_back("lo in " + p.netns + " is down");
    if (side.missing) out.push_back("interface " + where + " is missing");
    if (side.down) out.push_back("interface " + where + " is down");
    if (side.address) out.push_back("address " + p.address.str() + " of " + where + " is missing");
    if (side.address6)
        out.push_back("address " + p.address6->str() + " of " + where + " is missing");
    if (side.route)
        out.push_back("the default route via " + p.network.gateway.str() + " in " + p.netns +
                      " is missing");
    if (side.route6)
        out.push_back("the IPv6 default route via " + p.network.gateway6.str() + " in " + p.netns +
                      " is missing");
    return out;
}

std::vector<std::string> NetlinkLinks::repair_link(const Publication& p, const Netns& ns) {
    std::vector<std::string> done;
    nl_sock* sk = host();
    auto host_end = get_link(sk, p.host_veth);
    if (!host_end) return done;
    const int host_index = rtnl_link_get_ifindex(host_end.get());
    if (!(rtnl_link_get_flags(host_end.get()) & IFF_UP)) {
        set_up(sk, host_end.get(), p.host_veth);
        done.push_back("veth " + p.host_veth + " up");
    }
    if (!hairpin_on(sk, host_index)) {
        set_hairpin(sk, host_index, p.host_veth);
        done.push_back("hairpin of " + p.host_veth);
    }
    auto inside = socket_in(ns);
    nl_sock* csk = inside->get();
    const auto side = container_side(csk, p);
    const std::string where = p.ifname + " in " + p.netns;
    if (side.lo_down) {
        set_up(csk, get_link(csk, "lo").get(), "lo in " + p.netns);
        done.push_back("lo in " + p.netns + " up");
    }
    if (side.missing) {
        // Its veth's other end is there, under another name: a pair made anew.
        delete_link(p.host_veth);
        create_container_link(p, ns);
        done.push_back("veth " + p.host_veth + " and " + where);
        return done;
    }
    auto link = get_link(csk, p.ifname);
    const int index = rtnl_link_get_ifindex(link.get());
    if (side.address) {
        add_address(csk, index, p.address, p.network.subnet.prefix, where);
        done.push_back("address " + p.address.str() + " of " + where);
    }
    if (side.address6) {
        add_address(csk, index, *p.address6, p.network.subnet6->prefix, where);
        done.push_back("address " + p.address6->str() + " of " + where);
    }
    if (side.down) {
        set_up(csk, link.get(), where);
        done.push_back(where + " up");
    }
    // An address or the link going down took the routes with it.
    if (default_route_oif(csk, AF_INET) != index) {
        add_default_route(csk, index, p.network.gateway, p);
        done.push_back("the default route in " + p.netns);
    }
    if (p.address6 && default_route_oif(csk, AF_INET6) != index) {
        add_default_route(csk, index, p.network.gateway6, p);
        done.push_back("the IPv6 default route in " + p.netns);
    }
    return done;
}

bool NetlinkLinks::exists_in(const Netns& ns, const std::string& name) {
    auto inside = socket_in(ns);
    return get_link(inside->get(), name) != nullptr;
}

std::optional<std::string> NetlinkLinks::peer_name(const Publication& p, const Netns& ns) {
    auto inside = socket_in(ns);
    auto link = get_link(inside->get(), p.ifname);
    auto is_veth = [](rtnl_link* l) {
        const char* type = rtnl_link_get_type(l);
        return type && std::strcmp(type, "veth") == 0;
    };
    // The one portpub made: a veth with the MAC it derives from the address.
    const auto mac = container_mac(p.address);
    nl_addr* lladdr = link ? rtnl_link_get_addr(link.get()) : nullptr;
    if (!link || !is_veth(link.get()) || !lladdr || nl_addr_get_len(lladdr) != mac.size() ||
        std::memcmp(nl_addr_get_binary_addr(lladdr), mac.data(), mac.size()) != 0)
        return std::nullopt;
    const int peer = rtnl_link_get_link(link.get());  // an index of the host's
    if (peer <= 0) return std::nullopt;
    rtnl_link* raw = nullptr;
    if (rtnl_link_get_kernel(host(), peer, nullptr, &raw) < 0) return std::nullopt;
    LinkPtr host_end(raw);
    // The index must name its other end, not an interface that has it by chance.
    if (!is_veth(host_end.get()) ||
        rtnl_link_get_link(host_end.get()) != rtnl_link_get_ifindex(link.get()))
        return std::nullopt;
    return std::string(rtnl_link_get_name(host_end.get()));
}

bool NetlinkLinks::on_bridge(const std::string& port, const std::string& bridge_name) {
    nl_sock* sk = host();
    auto link = get_link(sk, port);
    auto bridge = get_link(sk, bridge_name);
    return link && bridge &&
           rtnl_link_get_master(link.get()) == rtnl_link_get_ifindex(bridge.get());
}

void NetlinkLinks::attach(const std::string& port, const std::string& bridge_name) {
    nl_sock* sk = host();
    auto link = get_link(sk, port);
    auto bridge = get_link(sk, bridge_name);
    if (!link) throw Error("interface " + port + " is missing");
    if (!bridge) throw Error("bridge " + bridge_name + " is missing");
    LinkPtr change(must(rtnl_link_alloc()));
    rtnl_link_set_master(change.get(), rtnl_link_get_ifindex(bridge.get()));
    int err = rtnl_link_change(sk, link.get(), change.get(), 0);
    if (err < 0) fail("cannot attach " + port + " to bridge " + bridge_name, err);
    set_hairpin(sk, rtnl_link_get_ifindex(link.get()), port);
    set_up(sk, link.get(), port);
}

std::string NetlinkLinks::link_type(const std::string& name) {
    auto link = get_link(host(), name);
    const char* type = link ? rtnl_link_get_type(link.get()) : nullptr;
    return type ? type : "";
}

bool NetlinkLinks::link_exists(const std::string& name) {
    return get_link(host(), name) != nullptr;
}

void NetlinkLinks::delete_link(const std::string& name) {
    LinkPtr link(must(rtnl_link_alloc()));
    rtnl_link_set_name(link.get(), name.c_str());
    int err = rtnl_link_delete(host(), link.get());
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
        fail("cannot delete interface " + name, err);
}

void NetlinkLinks::set_link_down(const std::string& name) {
    auto link = get_link(host(), name);
    if (!link) return;
    LinkPtr change(must(rtnl_link_alloc()));
    rtnl_link_unset_flags(change.get(), IFF_UP);
    int err = rtnl_link_change(host(), link.get(), change.get(), 0);
    if (err < 0) fail("cannot set " + name + " down", err);
}

void NetlinkLinks::remove_address(const std::string& link_name, const Cidr& address) {
    auto link = get_link(host(), link_name);
    if (!link) return;
    AddrPtr addr(must(rtnl_addr_alloc()));
    rtnl_addr_set_ifindex(addr.get(), rtnl_link_get_ifindex(link.get()));
    auto local = nl_address(address.address, address.prefix);
    rtnl_addr_set_local(addr.get(), local.get());
    int err = rtnl_addr_delete(host(), addr.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR)
        fail("cannot remove address " + address.str() + " from " + link_name, err);
}

}  // namespace portpub
