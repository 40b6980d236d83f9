// The forward file and the forward -p specs: parsed and checked whole (a --to address must be a
// unicast address of another machine, no two forwards share a host port, none takes a port a
// container publishes), written back in the file's format, and named for messages.
#include "portpub/forward_config.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "portpub/error.hpp"

namespace portpub {

namespace {

// A value of the user's, in quotes, printable and cut when long.
std::string in_quotes(std::string_view v) {
    return "'" + shown(v) + "'";
}

std::string ports_text(const PortRange& r) {
    return r.size() == 1 ? std::to_string(r.first)
                         : std::to_string(r.first) + "-" + std::to_string(r.last);
}

std::string host_port_text(Proto proto, std::uint16_t port) {
    return std::to_string(port) + "/" + std::string(proto_name(proto));
}

bool overlap(const PortRange& a, const PortRange& b) {
    return a.first <= b.last && b.first <= a.last;
}

IpAddress parse_to(std::string_view text, ToCheck check) {
    std::string_view bare = text;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']')
        bare = bare.substr(1, bare.size() - 2);
    auto a = IpAddress::parse(bare);
    if (!a)
        throw Error("invalid --to address " + in_quotes(text) +
                    ": expected an IPv4 or IPv6 address of the machine to forward to, e.g. "
                    "192.0.2.10 or 2001:db8::10 (not a host name)");
    const std::uint8_t first = a->data()[0];
    if (a->is_unspecified() || a->is_loopback() || (a->is_v4() && (first >= 224 || first == 0)) ||
        (!a->is_v4() && first == 0xff))
        throw Error("invalid --to address " + in_quotes(text) +
                    ": it must be a unicast address of another machine (for a program of this "
                    "host, leave --to out: -p 80:5000 sends port 80 to local port 5000)");
    // Refused since 0.6: what an earlier portpub applied still reads back.
    if (check == ToCheck::as_applied) return *a;
    if (!a->is_v4() && unmapped(*a).is_v4())
        throw Error("invalid --to address " + in_quotes(text) +
                    ": an IPv4 address written as IPv6; write it as " + unmapped(*a).str());
    if (!a->is_v4() && Cidr{*IpAddress::parse("fe80::"), 10}.contains(*a))
        throw Error("invalid --to address " + in_quotes(text) +
                    ": a link-local address names a machine only with its interface, which a "
                    "forward does not take; use the machine's global or unique local address");
    return *a;
}

}  // namespace

std::string Forward::publish() const {
    return ports_text(host) + ":" + ports_text(target) + "/" + std::string(proto_name(proto));
}

std::string Forward::name() const {
    return to ? publish() + " --to " + to->str() : publish();
}

std::string Forward::target_text(std::uint16_t port) const {
    const auto p = std::to_string(target.first + (port - host.first));
    return to ? to->url_str() + ":" + p : "127.0.0.1:" + p;
}

std::string Forward::describe() const {
    const std::string from = ports_text(host) + "/" + std::string(proto_name(proto));
    if (!to) return from + " -> local port " + ports_text(target);
    return from + " -> " + to->url_str() + ":" + ports_text(target);
}

Forward parse_forward(std::string_view publish, std::optional<std::string_view> to, ToCheck check) {
    const PortSpec spec = parse_port_spec(publish);
    const std::string spec_text = in_quotes(publish);
    if (!spec.host)
        throw Error("invalid forward " + spec_text +
                    ": a forward needs a host port, as in -p 80:5000 (host port 80 to port 5000)");
    if (spec.host_ip)
        throw Error("invalid forward " + spec_text +
                    ": a forward serves every address of this host; leave out the address " +
                    in_quotes(spec.host_ip->str()));
    if (spec.host->size() != spec.container.size())
        throw Error("invalid forward " + spec_text + ": host ports " + ports_text(*spec.host) +
                    " and target ports " + ports_text(spec.container) +
                    " are not as many; a forward maps ports one to one");
    Forward f;
    f.proto = spec.proto;
    f.host = *spec.host;
    f.target = spec.container;
    if (to) f.to = parse_to(*to, check);
    if (!f.to && overlap(f.host, f.target))
        throw Error("invalid forward " + spec_text +
                    ": it would forward a port of this host to itself; choose another target "
                    "port, or add --to ADDRESS for another machine");
    return f;
}

void check_overlaps(const std::vector<Forward>& forwards, const std::string& where) {
    std::vector<const Forward*> sorted;
    for (const auto& f : forwards)
        sorted.push_back(&f);
    std::sort(sorted.begin(), sorted.end(), [](const Forward* a, const Forward* b) {
        return std::pair(a->proto, a->host.first) < std::pair(b->proto, b->host.first);
    });
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        const Forward &a = *sorted[i - 1], &b = *sorted[i];
        if (a.proto != b.proto || !overlap(a.host, b.host)) continue;
        const auto port = std::max(a.host.first, b.host.first);
        throw Error("forwards " + in_quotes(a.name()) + " and " + in_quotes(b.name()) + where +
                    " both claim host port " + host_port_text(a.proto, port) +
                    "; remove one of them (portpub forward rm)");
    }
}

std::vector<Forward> parse_forward_file(std::string_view text, const std::string& path) {
    if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); }))
        return {};
    const std::string file = "forward file " + in_quotes(path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // a number too large is out_of_range
        throw Error(file + " is not valid JSON (" + e.what() +
                    "); fix it or move it away, then run portpub forward apply");
    }
    if (!j.is_object() || !j.contains("forwards") || !j.at("forwards").is_array())
        throw Error(file + " must be an object with a \"forwards\" array, e.g. " +
                    R"({"forwards":[{"publish":"80:5000/tcp"}]})");
    for (const auto& [key, value] : j.items())
        if (key != "forwards")
            throw Error(file + " has an unknown field " + in_quotes(key) +
                        "; the only one is \"forwards\"");
    std::vector<Forward> out;
    std::size_t n = 0;
    for (const auto& entry : j.at("forwards")) {
        ++n;
        const std::string where = file + ", forward " + std::to_string(n);
        if (!entry.is_object() || !entry.contains("publish") || !entry.at("publish").is_string())
            throw Error(where + ": expected an object with a \"publish\" string, e.g. " +
                        R"({"publish":"80:5000/tcp"})");
        for (const auto& [key, value] : entry.items())
            if (key != "publish" && key != "to")
                throw Error(where + ": unknown field " + in_quotes(key) +
                            " (the fields are \"publish\" and \"to\")");
        if (entry.contains("to") && !entry.at("to").is_string())
            throw Error(where + ": \"to\" must be a string, an IP address");
        const auto publish = entry.at("publish").get<std::string>();
        std::optional<std::string> to;
        if (entry.contains("to")) to = entry.at("to").get<std::string>();
        try {
            out.push_back(parse_forward(publish, to));
        } catch (const Error& e) {
            throw Error(where + ": " + e.what());
        }
    }
    check_overlaps(out, " in " + in_quotes(path));
    return out;
}

std::string forward_file_text(const std::vector<Forward>& forwards) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : forwards) {
        nlohmann::json e = {{"publish", f.publish()}};
        if (f.to) e["to"] = f.to->str();
        list.push_back(std::move(e));
    }
    return nlohmann::json{{"forwards", list}}.dump(2) + "\n";
}

void check_container_conflicts(const std::vector<Forward>& forwards,
                               const std::vector<PublishedPort>& published) {
    for (const auto& f : forwards) {
        Mapping mine{std::nullopt, f.proto, f.host.first, f.target.first, f.host.size()};
        for (const auto& p : published) {
            if (!conflicts(mine, p.mapping)) continue;
            const auto port = std::max(f.host.first, p.mapping.host_port);
            throw Error("host port " + host_port_text(f.proto, port) +
                        " is already published by container " + p.owner + " (as " +
                        host_ip_text(p.mapping) + ":" + std::to_string(port) +
                        "); choose another host port for forward " + in_quotes(f.name()) +
                        " or run 'portpub down --id " + p.owner + "'");
        }
    }
}

const Forward* forward_holding(const std::vector<Forward>& forwards, Proto proto,
                               std::uint16_t port) {
    for (const auto& f : forwards)
        if (f.proto == proto && f.host.contains(port)) return &f;
    return nullptr;
}

}  // namespace portpub
