// libFuzzer target: the -p grammar, and the way from specs to mappings.
//   1. The whole input as one -p value: parse_port_spec accepts it with a
//      consistent PortSpec, or rejects it with a one-line Error.
//   2. The input as comma-separated specs, as the io.portpub.ports annotation
//      carries them: plan_up, on fixed host facts and one other container,
//      returns mappings that give every container port one host port and clash
//      with nothing, and that survive the record's round trip; or a one-line Error.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "portpub/error.hpp"
#include "portpub/nat_elements.hpp"
#include "portpub/planner.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/publication.hpp"

using namespace portpub;
using portpub::fuzz::accepted;
using portpub::fuzz::require;

namespace {

IpAddress ip(const char* text) {
    return *IpAddress::parse(text);
}

void check_spec(const PortSpec& s, std::string_view text) {
    constexpr std::string_view step = "parse_port_spec";
    require(s.text == text, step, "the spec's text is not the input");
    require(s.container.first >= 1 && s.container.first <= s.container.last, step,
            "an empty or reversed container range");
    if (s.host) {
        require(s.host->first >= 1 && s.host->first <= s.host->last, step,
                "an empty or reversed host range");
        require(s.host->size() == s.container.size() || s.container.size() == 1, step,
                "host and container ranges of different lengths");
    }
}

// A host with a few addresses, a reserved port and two busy ones, kept small
// so that running out of ports is within reach of the fuzzer.
const HostPortFacts& facts() {
    static const HostPortFacts f = [] {
        HostPortFacts h;
        h.ephemeral = {40000, 40999};
        h.reserved = [](std::uint16_t p) { return p == 40010; };
        h.in_use = [](const std::optional<IpAddress>& a, Proto proto, std::uint16_t p) {
            return (proto == Proto::tcp && p == 22) ||
                   (proto == Proto::udp && p == 53 && (!a || a->is_unspecified() || a->is_v4()));
        };
        h.holder = [](const std::optional<IpAddress>&, Proto, std::uint16_t p) {
            return p == 22 ? std::string("sshd (pid 1) on 0.0.0.0:22")
                           : std::string("resolved (pid 2) on 127.0.0.53:53");
        };
        h.is_local = [](const IpAddress& a) {
            return a.is_loopback() || a == ip("192.0.2.1") || a == ip("2001:db8::1");
        };
        return h;
    }();
    return f;
}

// Another container on the same bridge, publishing 8080/tcp everywhere and
// 5000-5009/udp on one address.
const std::vector<Publication>& existing() {
    static const std::vector<Publication> pubs = [] {
        Publication p;
        p.id = "web1";
        p.netns = "/run/netns/web1";
        p.netns_inode = 4026532001;
        p.network = {"portpub0", *Cidr::parse("10.77.0.0/16"), ip("10.77.0.1"), std::nullopt, {}};
        p.ifname = "eth0";
        p.host_veth = host_veth_name(ip("10.77.0.2"));
        p.address = ip("10.77.0.2");
        p.mappings = {{std::nullopt, Proto::tcp, 8080, 80, 1},
                      {ip("192.0.2.1"), Proto::udp, 5000, 5000, 10}};
        return std::vector<Publication>{p};
    }();
    return pubs;
}

void check_plan(const Plan& plan, const std::vector<std::string>& texts) {
    constexpr std::string_view step = "plan_up";
    const auto& pub = plan.publication;
    std::uint64_t wanted = 0;
    for (const auto& t : texts)
        wanted += parse_port_spec(t).container.size();  // plan_up parsed them all
    require(port_count(pub.mappings) == wanted, step, "not one host port for every container port");
    for (const auto& m : pub.mappings) {
        require(m.count >= 1 && m.host_port >= 1 && m.container_port >= 1, step, "an empty run");
        require(std::uint32_t{m.host_port} + m.count <= 65536 &&
                    std::uint32_t{m.container_port} + m.count <= 65536,
                step, "a run past port 65535");
        for (const auto& other : existing())
            for (const auto& taken : other.mappings)
                require(!conflicts(m, taken), step, "a host port another container publishes");
    }
    // Quadratic, so only for what a command line plausibly holds.
    if (pub.mappings.size() <= 256)
        for (std::size_t i = 0; i < pub.mappings.size(); ++i)
            for (std::size_t j = i + 1; j < pub.mappings.size(); ++j)
                require(!conflicts(pub.mappings[i], pub.mappings[j]), step,
                        "one host port given twice");
    require(from_record(to_record(pub), "fuzz") == pub, step,
            "the record does not read back as written");
    // What `up` and `ls` derive from the plan; every port expanded, so only
    // for small plans, to keep the fuzzer fast.
    proxy_listeners(pub);
    if (wanted <= 1024) {
        nat_elements(pub);
        proxy_sockets(pub, true);
        docker_port_lines(pub.mappings);
        docker_ps_ports(listed_mappings(pub));
        to_report(pub).dump();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    accepted<Error>("parse_port_spec", [&] { check_spec(parse_port_spec(text), text); });

    UpRequest req;
    req.netns = "/run/netns/fuzz";
    for (std::size_t start = 0;;) {
        const auto comma = text.find(',', start);
        req.specs.emplace_back(text.substr(start, comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    Plan plan;
    if (accepted<Error>("plan_up", [&] {
            plan = plan_up(req, NetnsIdentity{"/run/netns/fuzz", 4026532999}, existing(), facts());
        }))
        check_plan(plan, req.specs);
    return 0;
}
