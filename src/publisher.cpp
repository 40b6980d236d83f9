#include "portpub/publisher.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <iostream>

#include "portpub/capabilities.hpp"
#include "portpub/conntrack.hpp"
#include "portpub/error.hpp"
#include "portpub/firewall_change.hpp"
#include "portpub/host_ports.hpp"
#include "portpub/links.hpp"
#include "portpub/logger.hpp"
#include "portpub/nat_elements.hpp"
#include "portpub/netns.hpp"
#include "portpub/nft_firewall.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_sockets.hpp"
#include "portpub/sysctl.hpp"

namespace portpub {

namespace {

constexpr const char* kIpForward = "net/ipv4/ip_forward";

// Undo actions for the steps taken so far, run in reverse unless committed.
class Rollback {
  public:
    ~Rollback() {
        if (committed_) return;
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception& e) {
                std::cerr << "portpub: while undoing a failed up: " << e.what() << "\n";
            }
        }
    }
    void add(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
    void commit() { committed_ = true; }

  private:
    std::vector<std::function<void()>> steps_;
    bool committed_ = false;
};

// True while the namespace file a record names still holds that namespace.
bool namespace_alive(const Publication& p) {
    struct stat st {};
    return ::stat(p.netns.c_str(), &st) == 0 && st.st_ino == p.netns_inode;
}

std::vector<Publication> without(const std::vector<Publication>& all, const std::string& id) {
    std::vector<Publication> out;
    for (const auto& p : all)
        if (p.id != id) out.push_back(p);
    return out;
}

bool kernel_has_sctp() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP));
    return static_cast<bool>(fd);
}

}  // namespace

void Publisher::add_notes(const UpRequest& req, const Publication& pub) {
    bool unserved = false, sctp = false, udp_unserved = false;
    for (const auto& m : pub.mappings) {
        unserved = unserved || (!req.proxy && (proxy_serves_loopback4(m) || proxy_serves_v6(m)));
        sctp = sctp || m.proto == Proto::sctp;
        udp_unserved =
            udp_unserved || (req.proxy && req.runtime_holds_ports && m.proto == Proto::udp &&
                             (proxy_serves_loopback4(m) || proxy_serves_v6(m)));
    }
    if (udp_unserved)
        notes_.push_back(
            "the runtime holds the published ports: UDP to 127.0.0.1, ::1 and from "
            "IPv6 clients is not served for " +
            pub.id);
    if (unserved)
        notes_.push_back(
            "--no-proxy: connections to 127.0.0.1, ::1 and from IPv6 clients are not "
            "served for " +
            pub.id);
    if (sctp && !kernel_has_sctp())
        notes_.push_back(
            "SCTP mappings get kernel NAT only, and this kernel has no SCTP: SCTP on "
            "127.0.0.1 and ::1 is not served");
}

std::string Publisher::owner() const {
    std::error_code ec;
    auto path = std::filesystem::weakly_canonical(std::filesystem::absolute(store_.dir(), ec), ec);
    return ec ? store_.dir().string() : path.string();
}

Publication Publisher::up(const UpRequest& req) {
    validate_request(req);  // bad input first: it is the most likely mistake
    notes_.clear();
    require_capabilities();
    auto ns = Netns::open(req.netns);
    auto lock = store_.lock();
    const auto existing = store_.load_all();
    const NetnsIdentity identity{ns.path(), ns.inode()};
    auto facts = read_host_port_facts();
    // An `up` again for the same id replaces that publication: the ports its
    // proxy holds are about to be released, so they do not count as in use.
    const std::string id = publication_id(req, identity);
    if (auto old = std::find_if(existing.begin(), existing.end(),
                                [&](const Publication& p) { return p.id == id; });
        old != existing.end() && old->proxy) {
        auto held_by_old = [mappings = old->mappings](const std::optional<IpAddress>& ip,
                                                      Proto proto, std::uint16_t port) {
            Mapping probe{ip, proto, port, 0, 1};
            return std::any_of(mappings.begin(), mappings.end(),
                               [&](const Mapping& m) { return conflicts(m, probe); });
        };
        facts.in_use = [in_use = facts.in_use, held_by_old](const std::optional<IpAddress>& ip,
                                                            Proto proto, std::uint16_t port) {
            return in_use(ip, proto, port) && !held_by_old(ip, proto, port);
        };
    }
    Plan plan = plan_up(req, identity, existing, facts, namespace_alive);
    const Publication& pub = plan.publication;
    add_notes(req, pub);
    HostState host = store_.load_host();
    auto others = without(existing, pub.id);
    if (plan.replaces) {
        // Same id again: a full `down` of the old publication, then an `up`
        // of the new one, whose own rollback leaves nothing if it fails.
        teardown(*plan.replaces, others, host);
        store_.save_host(host);
        store_.remove(pub.id);
        try {
            return apply(pub, others, ns, host);
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (the earlier publication of " + pub.id +
                        " was removed; run up again once the problem is fixed)");
        }
    }
    return apply(pub, others, ns, host);
}

namespace {

// The bridge (made, or an existing one brought up and addressed), and the
// veth pair with the container's address.
void make_links(const Publication& pub, const Netns& ns, Links& links, HostState& host,
                Rollback& rollback) {
    const auto& net = pub.network;
    auto did = links.ensure_bridge(net, !host.bridges.contains(net.bridge));
    if (did.created) {
        rollback.add([&links, name = net.bridge] { links.delete_link(name); });
    } else {
        if (did.brought_up)
            rollback.add([&links, name = net.bridge] { links.set_link_down(name); });
        if (did.address_added)
            rollback.add([&links, net] {
                links.remove_address(net.bridge, {net.gateway, net.subnet.prefix});
            });
    }
    auto& owned = host.bridges[net.bridge];
    owned.created = owned.created || did.created;
    owned.address_added = owned.address_added || did.address_added;
    owned.brought_up = owned.brought_up || did.brought_up;

    // No record holds this address, so an interface of this name is debris
    // of an interrupted run.
    if (links.link_exists(pub.host_veth)) links.delete_link(pub.host_veth);
    rollback.add([&links, name = pub.host_veth] { links.delete_link(name); });
    links.create_container_link(pub, ns);
}

}  // namespace

Publication Publisher::apply(Publication pub, const std::vector<Publication>& others,
                             const Netns& ns, HostState& host) {
    Links links;
    // Everything that can refuse without changing anything comes first: a
    // kernel without nftables, a table of another state directory, a subnet
    // that is taken.
    NftFirewall firewall(owner());
    firewall.check_owner();
    Rollback rollback;  // after links and firewall: its undo steps use them
    // A container attached by another CNI plugin: its subnet is on that
    // plugin's bridge, and the links are that plugin's to make.
    const bool own_links = !pub.host_veth.empty();
    if (own_links) links.check_subnet_free(pub.network);

    HostState new_host = host;
    if (auto forward = read_sysctl(kIpForward); forward && *forward != "1") {
        write_sysctl(kIpForward, "1");
        rollback.add([value = *forward] { write_sysctl(kIpForward, value); });
        if (!new_host.ip_forward_before) new_host.ip_forward_before = *forward;
    }

    if (own_links) make_links(pub, ns, links, new_host, rollback);

    // The proxy's sockets come before the rules: the redirects name its
    // listeners' ports, and a port in use must fail before anything points at it.
    std::optional<ProxyFds> proxy_fds;
    if (pub.proxy) {
        proxy_fds = open_proxy_sockets(pub);
        pub.proxy->listen4 = proxy_fds->port4;
        pub.proxy->listen6 = proxy_fds->port6;
        pub.proxy->ipv6 = proxy_fds->ipv6;
    }

    firewall.apply(change_for_up(pub));
    rollback.add([&firewall, pub, others] { firewall.apply(change_for_down(pub, others)); });
    if (auto note = try_flush_udp_conntrack(pub.mappings)) notes_.push_back(*note);

    if (pub.proxy) {
        auto started = start_proxy(pub, *proxy_fds, store_.dir());
        proxy_fds.reset();  // the proxy holds them now
        pub.proxy->pid = started.pid;
        pub.proxy->start_time = started.start_time;
        rollback.add([this, started, id = pub.id] {
            stop_process(started);
            remove_log(log_path(store_.dir(), id));
        });
    }

    store_.save(pub);
    rollback.add([this, id = pub.id] { store_.remove(id); });
    store_.save_host(new_host);
    host = new_host;
    rollback.commit();
    return pub;
}

std::optional<Publication> Publisher::down(const DownRequest& req) {
    require_capabilities();
    auto lock = store_.lock();
    const auto existing = store_.load_all();
    const Publication* target = nullptr;
    if (req.id) {
        validate_id(*req.id);
        for (const auto& p : existing)
            if (p.id == *req.id) target = &p;
    } else if (req.netns) {
        const auto path = normalize_netns_path(*req.netns);
        for (const auto& p : existing)
            if (p.netns == path) target = &p;
        if (!target) {
            // The same namespace under another path (e.g. /proc/PID/ns/net).
            try {
                auto ns = Netns::open(*req.netns);
                for (const auto& p : existing)
                    if (p.netns_inode == ns.inode()) target = &p;
            } catch (const Error&) {
                // gone or not a namespace: nothing else to match
            }
        }
    }
    if (!target) return std::nullopt;
    const Publication pub = *target;
    HostState host = store_.load_host();
    teardown(pub, without(existing, pub.id), host);
    store_.save_host(host);
    store_.remove(pub.id);
    return pub;
}

std::optional<std::vector<std::string>> Publisher::check(const std::string& id) {
    validate_id(id);
    auto lock = store_.lock();
    const auto existing = store_.load_all();
    auto it = std::find_if(existing.begin(), existing.end(),
                           [&](const Publication& p) { return p.id == id; });
    if (it == existing.end()) return std::nullopt;
    const Publication& pub = *it;
    std::vector<std::string> missing;
    if (!namespace_alive(pub)) missing.push_back("namespace " + pub.netns + " is gone");
    if (!pub.host_veth.empty() && !Links().link_exists(pub.host_veth))
        missing.push_back("veth " + pub.host_veth + " is missing");
    NftFirewall firewall(owner());
    if (!firewall.table_exists()) {
        missing.push_back("table inet " + std::string(kTableName) + " is missing");
    } else {
        const auto elements = nat_elements(pub);
        const auto held = firewall.in_kernel(elements);
        for (std::size_t i = 0; i < elements.size(); ++i)
            if (!held[i]) missing.push_back("map element " + describe(elements[i]) + " is missing");
    }
    if (pub.proxy && !process_running({pub.proxy->pid, pub.proxy->start_time}))
        missing.push_back("proxy (pid " + std::to_string(pub.proxy->pid) + ") is not running");
    return missing;
}

void Publisher::teardown(const Publication& pub, const std::vector<Publication>& remaining,
                         HostState& host) {
    // The proxy first: its ports go with it, before the rules that lead to it.
    if (pub.proxy) {
        stop_process({pub.proxy->pid, pub.proxy->start_time});
        remove_log(log_path(store_.dir(), pub.id));
    }
    NftFirewall firewall(owner());
    firewall.apply(change_for_down(pub, remaining));
    if (auto note = try_flush_udp_conntrack(pub.mappings))
        std::cerr << "portpub: " << *note << "\n";
    Links links;
    // Deleting the host end takes the peer, its address and route with it.
    if (!pub.host_veth.empty()) links.delete_link(pub.host_veth);

    const bool bridge_in_use =
        std::any_of(remaining.begin(), remaining.end(),
                    [&](const Publication& r) { return r.network.bridge == pub.network.bridge; });
    if (auto it = host.bridges.find(pub.network.bridge);
        !bridge_in_use && it != host.bridges.end()) {
        // Put a bridge that portpub did not create back as it was.
        if (it->second.created) {
            links.delete_link(pub.network.bridge);
        } else {
            if (it->second.address_added)
                links.remove_address(pub.network.bridge,
                                     {pub.network.gateway, pub.network.subnet.prefix});
            if (it->second.brought_up) links.set_link_down(pub.network.bridge);
        }
        host.bridges.erase(it);
    }
    if (remaining.empty() && host.ip_forward_before) {
        write_sysctl(kIpForward, *host.ip_forward_before);
        host.ip_forward_before.reset();
    }
}

}  // namespace portpub
