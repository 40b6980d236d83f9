// forwards.json as JSON and back (a malformed file named, with what to do), removed when empty,
// and what the container side reads of it: the forwarding the forwards need, and their host
// ports counted as in use for `up`, named as the forward that holds them.
#include "portpub/forward_state.hpp"

#include <nlohmann/json.hpp>

#include "portpub/error.hpp"
#include "portpub/forward_plan.hpp"
#include "portpub/json_integer.hpp"

namespace portpub {

std::string applied_forwards_text(const AppliedForwards& a) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : a.forwards) {
        nlohmann::json e = {{"publish", f.publish()}};
        if (f.to) e["to"] = f.to->str();
        list.push_back(std::move(e));
    }
    nlohmann::json j = {{"config", a.config}, {"forwards", list}};
    if (a.proxy) j["proxy"] = {{"pid", a.proxy->pid}, {"start_time", a.proxy->start_time}};
    return j.dump(1) + "\n";
}

AppliedForwards parse_applied_forwards(std::string_view text, const std::string& what) {
    AppliedForwards a;
    try {
        const auto j = nlohmann::json::parse(text);
        a.config = j.at("config").get<std::string>();
        for (const auto& e : j.at("forwards")) {
            std::optional<std::string> to;
            if (e.contains("to")) to = e.at("to").get<std::string>();
            a.forwards.push_back(
                parse_forward(e.at("publish").get<std::string>(), to, ToCheck::as_applied));
        }
        if (j.contains("proxy"))
            a.proxy = ProcessId{json_integer<std::int32_t>(j.at("proxy"), "pid"),
                                json_integer<std::uint64_t>(j.at("proxy"), "start_time")};
    } catch (const nlohmann::json::exception& e) {
        throw Error(what + " is malformed (" + e.what() +
                    "); move it away and run portpub forward apply");
    } catch (const std::exception& e) {  // Error, or a field json_integer refused
        throw Error(what + " is malformed (" + e.what() +
                    "); move it away and run portpub forward apply");
    }
    return a;
}

AppliedForwards load_applied_forwards(const StateStore& store) {
    const auto text = store.load_file(kForwardState);
    if (!text) return {};
    return parse_applied_forwards(*text, (store.dir() / kForwardState).string());
}

void save_applied_forwards(StateStore& store, const AppliedForwards& a) {
    if (a.forwards.empty() && !a.proxy) {
        store.remove_file(kForwardState);
        return;
    }
    store.save_file(kForwardState, applied_forwards_text(a));
}

bool forwards_need_ip_forward(const StateStore& store) {
    return needs_ipv4_forwarding(load_applied_forwards(store).forwards);
}

bool forwards_need_ip6_forward(const StateStore& store) {
    return needs_ipv6_forwarding(load_applied_forwards(store).forwards);
}

void add_forward_holds(HostPortFacts& facts, const StateStore& store) {
    auto forwards = load_applied_forwards(store).forwards;
    if (forwards.empty()) return;
    facts.in_use = [in_use = facts.in_use, forwards](const std::optional<IpAddress>& ip,
                                                     Proto proto, std::uint16_t port) {
        return forward_holding(forwards, proto, port) || (in_use && in_use(ip, proto, port));
    };
    facts.holder = [holder = facts.holder, forwards](const std::optional<IpAddress>& ip,
                                                     Proto proto, std::uint16_t port) {
        if (const Forward* f = forward_holding(forwards, proto, port))
            return "portpub forward " + f->name() + " (to " + f->target_text(port) +
                   "; portpub forward rm " + f->name() + " frees it)";
        return holder ? holder(ip, proto, port) : std::string();
    };
}

}  // namespace portpub
