// Host ports for -p specs: explicit ports claimed first, then ranges and random ports given the
// first free port, past what containers, forwards, reserved ports and host sockets hold; claims
// kept a bit a port, so that 65,535 ports or 10,000 specs take linear time.
#include "portpub/port_allocator.hpp"

#include <algorithm>
#include <bitset>
#include <map>
#include <memory>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// Which host ports are claimed, per protocol and host address, one bit a port,
// so that 10,000 specs or a 65,535-port range are checked in linear time.
class PortBook {
  public:
    void claim(const Mapping& m) {
        auto& bits = slot(m.proto, m.host_ip);
        for (std::uint32_t p = m.host_port; p <= m.host_last(); ++p)
            bits.set(p);
    }

    // The first claimed port that `m` would collide with, if any.
    std::optional<std::uint16_t> first_clash(const Mapping& m) const {
        for (const auto& [key, bits] : slots_) {
            if (key.proto != m.proto || !meet(key.ip, m.host_ip)) continue;
            for (std::uint32_t p = m.host_port; p <= m.host_last(); ++p)
                if (bits->test(p)) return static_cast<std::uint16_t>(p);
        }
        return std::nullopt;
    }

  private:
    struct Key {
        Proto proto;
        std::optional<IpAddress> ip;
        friend auto operator<=>(const Key&, const Key&) = default;
    };
    using Bits = std::bitset<65536>;

    static bool meet(const std::optional<IpAddress>& a, const std::optional<IpAddress>& b) {
        Mapping x, y;
        x.host_ip = a;
        y.host_ip = b;
        return conflicts(x, y);  // same proto and port by construction
    }

    Bits& slot(Proto proto, const std::optional<IpAddress>& ip) {
        auto& p = slots_[Key{proto, ip}];
        if (!p) p = std::make_unique<Bits>();
        return *p;
    }

    std::map<Key, std::unique_ptr<Bits>> slots_;
};

std::string port_text(const std::optional<IpAddress>& ip, std::uint16_t port, Proto proto) {
    std::string s = ip ? ip->url_str() + ":" : "";
    return s + std::to_string(port) + "/" + std::string(proto_name(proto));
}

// The one-port mapping of `m` at host port `port`, to find who holds it.
Mapping single_port(const Mapping& m, std::uint16_t port) {
    Mapping one = m;
    one.host_port = port;
    one.count = 1;
    return one;
}

struct Requested {
    const PortSpec* spec;
    std::size_t index;  // position of the spec on the command line
    Mapping mapping;
};

class Allocator {
  public:
    Allocator(const std::vector<PublishedPort>& taken, const HostPortFacts& facts)
        : taken_(taken), facts_(facts) {
        for (const auto& t : taken)
            taken_book_.claim(t.mapping);
    }

    // Claims an explicit mapping or throws naming who holds the port.
    void claim_explicit(const PortSpec& spec, std::size_t index, const Mapping& m) {
        if (auto port = taken_book_.first_clash(m)) {
            for (const auto& t : taken_)
                if (conflicts(t.mapping, single_port(m, *port)))
                    throw Error("host port " + port_text(m.host_ip, *port, m.proto) +
                                " is already published by container " + t.owner + " (as " +
                                host_ip_text(t.mapping) + ":" + std::to_string(*port) +
                                "); choose another host port or run 'portpub down --id " + t.owner +
                                "'");
        }
        check_mine(spec, m);
        if (facts_.in_use)
            for (std::uint32_t p = m.host_port; p <= m.host_last(); ++p) {
                const auto port = static_cast<std::uint16_t>(p);
                if (!facts_.in_use(m.host_ip, m.proto, port)) continue;
                std::string who = facts_.holder ? facts_.holder(m.host_ip, m.proto, port) : "";
                throw Error("host port " + port_text(m.host_ip, port, m.proto) +
                            " is in use on this host" + (who.empty() ? "" : " by " + who) +
                            "; publishing it would hide that service from other hosts: stop it "
                            "or choose another host port");
            }
        claim(spec, index, m);
    }

    // Picks the first free port of `candidates` for one container port.
    std::optional<std::uint16_t> pick(const PortSpec& spec, std::size_t index, PortRange candidates,
                                      std::uint16_t container_port, bool skip_reserved) {
        Mapping m{spec.host_ip, spec.proto, 0, container_port, 1};
        for (std::uint32_t p = candidates.first; p <= candidates.last; ++p) {
            m.host_port = static_cast<std::uint16_t>(p);
            if (skip_reserved && facts_.reserved && facts_.reserved(m.host_port)) continue;
            if (taken_book_.first_clash(m) || mine_book_.first_clash(m)) continue;
            if (facts_.in_use && facts_.in_use(m.host_ip, m.proto, m.host_port)) continue;
            claim(spec, index, m);
            return m.host_port;
        }
        return std::nullopt;
    }

    std::vector<Requested>& requested() { return requested_; }

  private:
    void check_mine(const PortSpec& spec, const Mapping& m) {
        auto port = mine_book_.first_clash(m);
        if (!port) return;
        for (const auto& r : requested_)
            if (conflicts(r.mapping, single_port(m, *port)))
                throw Error("host port " + port_text(m.host_ip, *port, m.proto) +
                            " is requested twice, by '" + r.spec->text + "' and by '" + spec.text +
                            "'");
    }

    void claim(const PortSpec& spec, std::size_t index, const Mapping& m) {
        mine_book_.claim(m);
        requested_.push_back({&spec, index, m});
    }

    const std::vector<PublishedPort>& taken_;
    const HostPortFacts& facts_;
    PortBook taken_book_, mine_book_;
    std::vector<Requested> requested_;
};

}  // namespace

std::vector<Mapping> allocate_ports(const std::vector<PortSpec>& specs,
                                    const std::vector<PublishedPort>& taken,
                                    const HostPortFacts& facts) {
    Allocator alloc(taken, facts);
    // Explicit ports first, so that a range to pick from never takes a port that
    // a later spec names outright.
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& spec = specs[i];
        if (!spec.host || spec.picks_from_range()) continue;
        alloc.claim_explicit(spec, i,
                             Mapping{spec.host_ip, spec.proto, spec.host->first,
                                     spec.container.first, spec.container.size()});
    }
    // Where the search for a random port resumes, per protocol and address:
    // ports below it were taken or busy already, and none is freed meanwhile.
    std::map<std::pair<Proto, std::optional<IpAddress>>, std::uint32_t> cursors;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& spec = specs[i];
        if (spec.picks_from_range()) {
            if (!alloc.pick(spec, i, *spec.host, spec.container.first, false)) {
                std::string ip = spec.host_ip ? spec.host_ip->url_str() + ":" : "";
                throw Error("no free host port in " + ip + std::to_string(spec.host->first) + "-" +
                            std::to_string(spec.host->last) + "/" +
                            std::string(proto_name(spec.proto)) + " for '" + spec.text +
                            "': every port of the range is published or in use");
            }
        } else if (!spec.host) {
            std::uint32_t& random_cursor =
                cursors.try_emplace({spec.proto, spec.host_ip}, facts.ephemeral.first)
                    .first->second;
            for (std::uint32_t c = spec.container.first; c <= spec.container.last; ++c) {
                std::optional<std::uint16_t> got;
                if (random_cursor <= facts.ephemeral.last)
                    got = alloc.pick(
                        spec, i,
                        PortRange{static_cast<std::uint16_t>(random_cursor), facts.ephemeral.last},
                        static_cast<std::uint16_t>(c), true);
                if (got) {
                    random_cursor = std::uint32_t{*got} + 1;
                    continue;
                }
                throw Error("no free host port left in the local port range " +
                            std::to_string(facts.ephemeral.first) + "-" +
                            std::to_string(facts.ephemeral.last) + " for '" + spec.text +
                            "' (net.ipv4.ip_local_port_range); name host ports explicitly");
            }
        }
    }
    // Back to the order of the command line.
    auto& req = alloc.requested();
    std::stable_sort(req.begin(), req.end(),
                     [](const Requested& a, const Requested& b) { return a.index < b.index; });
    std::vector<Mapping> out;
    out.reserve(req.size());
    for (const auto& r : req)
        out.push_back(r.mapping);
    return merge_runs(out);
}

}  // namespace portpub
