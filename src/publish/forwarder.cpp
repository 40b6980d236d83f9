// `portpub forward` under the state lock: add and rm rewrite the forward file, apply it, and
// put the old file back when that fails; applying refuses a port a container holds, restarts the
// forward proxy only when its routes change, sets forwarding as needed, and rebuilds the table.
#include "portpub/forwarder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "portpub/capabilities.hpp"
#include "portpub/error.hpp"
#include "portpub/forward_firewall.hpp"
#include "portpub/forward_plan.hpp"
#include "portpub/forward_proxy.hpp"
#include "portpub/forward_state.hpp"
#include "portpub/host_ports.hpp"
#include "portpub/logger.hpp"
#include "portpub/sysctl.hpp"
#include "portpub/watcher_process.hpp"

namespace portpub {

namespace fs = std::filesystem;

namespace {

std::string in_quotes(std::string_view v) {
    return "'" + shown(v) + "'";
}

constexpr const char* kIpForward = "net/ipv4/ip_forward";
constexpr const char* kIp6Forward = "net/ipv6/conf/all/forwarding";

std::vector<PublishedPort> container_ports(const StateStore& store) {
    std::vector<PublishedPort> out;
    for (const auto& p : store.load_all().usable)
        for (const auto& m : p.mappings)
            out.push_back({p.id, m});
    return out;
}

// `key` = 1, its earlier value kept in `before` (host.json) the first time.
void enable(const char* key, std::optional<std::string>& before, HostState& host,
            StateStore& store) {
    const auto now = read_sysctl(key);
    if (!now)
        throw Error(std::string("this kernel has no ") + key +
                    " (is IPv6 off?); a forward to that family cannot work");
    if (*now == "1") return;
    if (!before) {
        before = *now;
        store.save_host(host);
    }
    write_sysctl(key, "1");
}

void put_back(const char* key, std::optional<std::string>& before, HostState& host,
              StateStore& store) {
    if (!before) return;
    write_sysctl(key, *before);
    before.reset();
    store.save_host(host);
}

}  // namespace

std::vector<Forward> Forwarder::read_config() const {
    std::ifstream in(config_, std::ios::binary);
    if (!in) {
        if (errno == ENOENT || !fs::exists(config_)) return {};  // no file: no forwards
        throw_errno("cannot read forward file " + in_quotes(config_.string()));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_forward_file(text.str(), config_.string());
}

void Forwarder::write_config(const std::vector<Forward>& forwards) const {
    // Missing parents 0755, the file 0644 (whatever the umask), replaced by
    // rename so that a reader or a crash never sees half of it.
    fs::path at;
    for (const auto& part : config_.parent_path()) {
        at /= part;
        if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST)
            throw_errno("cannot create directory " + in_quotes(at.string()));
    }
    const std::string text = forward_file_text(forwards);
    const fs::path tmp = config_.string() + "." + std::to_string(::getpid()) + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw_errno("cannot create " + in_quotes(tmp.string()));
    ::fchmod(fd.get(), 0644);
    const bool ok =
        ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd.get()) == 0 && ::rename(tmp.c_str(), config_.c_str()) == 0;
    if (!ok) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw_errno("cannot write forward file " + in_quotes(config_.string()), err);
    }
}

namespace {

// A --to address that the host itself answers, or that all of one of its
// networks does, is no machine to forward to (checked here: the host's
// addresses are the kernel's to tell).
void check_targets(const std::vector<Forward>& forwards) {
    const auto own = host_addresses();
    const auto broadcasts = host_broadcast_addresses();
    for (const auto& f : forwards) {
        if (!f.to) continue;
        auto is = [&](const std::vector<IpAddress>& in) {
            return std::find(in.begin(), in.end(), *f.to) != in.end();
        };
        if (is(own))
            throw Error("forward " + in_quotes(f.name()) + ": " + f.to->str() +
                        " is an address of this host; for a program of this host leave --to "
                        "out (-p " +
                        f.publish() + ")");
        if (is(broadcasts))
            throw Error("forward " + in_quotes(f.name()) + ": " + f.to->str() +
                        " is the broadcast address of a network of this host; give one "
                        "machine's address");
    }
}

}  // namespace

std::vector<std::string> Forwarder::remove(const Forward& forward) {
    auto lines = remove_locked(forward);
    settle_watcher_if_idle(store_, [this] { settle_watcher(watched_dir()); });
    return lines;
}

std::vector<std::string> Forwarder::apply() {
    std::vector<std::string> lines;
    {
        require_capabilities();
        auto lock = store_.lock();
        lines = apply_watched(read_config());
    }
    settle_watcher_if_idle(store_, [this] { settle_watcher(watched_dir()); });
    return lines;
}

std::filesystem::path Forwarder::watched_dir() const {
    std::error_code ec;
    auto dir = fs::weakly_canonical(fs::absolute(store_.dir()), ec);
    return ec ? fs::absolute(store_.dir()) : dir;
}

std::vector<std::string> Forwarder::apply_watched(const std::vector<Forward>& forwards) {
    auto lines = apply_locked(forwards);
    // Under the state lock, as `up` starts it (watcher_process.hpp).
    if (!forwards.empty() && watch_)
        if (auto why = start_watcher(watched_dir()))
            notes_.push_back("no watcher runs (" + *why +
                             "): after a flush or a firewall reload, run portpub forward apply");
    return lines;
}

std::vector<std::string> Forwarder::add(const std::vector<Forward>& forwards) {
    require_capabilities();
    auto lock = store_.lock();
    const auto before = read_config();
    auto after = before;
    for (const auto& f : forwards)
        if (std::find(after.begin(), after.end(), f) == after.end()) after.push_back(f);
    check_overlaps(after, " (with " + in_quotes(config_.string()) + ")");
    check_container_conflicts(after, container_ports(store_));
    check_targets(forwards);
    if (after == before) return apply_watched(after);
    write_config(after);
    try {
        return apply_watched(after);
    } catch (const Error&) {
        write_config(before);  // the file says what is in force
        throw;
    }
}

std::vector<std::string> Forwarder::remove_locked(const Forward& forward) {
    require_capabilities();
    auto lock = store_.lock();
    const auto before = read_config();
    auto after = before;
    auto it = std::find(after.begin(), after.end(), forward);
    if (it == after.end()) {
        std::string near;
        if (const Forward* f = forward_holding(after, forward.proto, forward.host.first))
            near = "; host port " + std::to_string(forward.host.first) + "/" +
                   std::string(proto_name(forward.proto)) + " is forwarded by " +
                   in_quotes(f->name());
        throw Error("no forward " + in_quotes(forward.name()) + " in " +
                    in_quotes(config_.string()) + near +
                    "; portpub forward ls lists them (give rm the same -p and --to)");
    }
    after.erase(it);
    write_config(after);
    try {
        return apply_watched(after);
    } catch (const Error&) {
        write_config(before);
        throw;
    }
}

std::vector<std::string> Forwarder::apply_locked(const std::vector<Forward>& forwards) {
    check_container_conflicts(forwards, container_ports(store_));
    ForwardFirewall firewall;  // no nftables: refused before anything changes
    auto applied = load_applied_forwards(store_);
    HostState host = store_.load_host();
    // Forwards turn forwarding on and off: not without a record of it.
    if (store_.host_problem()) throw Error(*store_.host_problem());
    const auto routes = proxy_routes(forwards);
    const bool keep_proxy = applied.proxy && process_running(*applied.proxy) &&
                            proxy_routes(applied.forwards) == routes;
    if (!keep_proxy) {
        if (applied.proxy) {
            stop_process(*applied.proxy);
            applied.proxy.reset();
            save_applied_forwards(store_, applied);
        }
        if (!routes.empty()) {
            try {
                applied.proxy = start_forward_proxy(routes, store_.dir());
            } catch (const Error&) {
                // A refused change leaves loopback served as before it.
                const auto earlier = proxy_routes(applied.forwards);
                if (!earlier.empty() && earlier != routes) {
                    try {
                        applied.proxy = start_forward_proxy(earlier, store_.dir());
                        save_applied_forwards(store_, applied);
                    } catch (const Error&) {
                        // the first error is the one to report
                    }
                }
                throw;
            }
            try {
                save_applied_forwards(store_, applied);
            } catch (...) {
                stop_process(*applied.proxy);
                throw;
            }
        }
    }
    if (needs_ipv4_forwarding(forwards)) enable(kIpForward, host.ip_forward_before, host, store_);
    if (needs_ipv6_forwarding(forwards)) enable(kIp6Forward, host.ip6_forward_before, host, store_);
    firewall.apply(forward_elements(forwards));
    applied.config = fs::absolute(config_).string();
    applied.forwards = forwards;
    save_applied_forwards(store_, applied);
    // Put back only what no container and no forward needs any more.
    // An unusable record may be a container that needs forwarding.
    const auto loaded = store_.load_all();
    const auto& records = loaded.usable;
    if (loaded.complete() && records.empty() && !needs_ipv4_forwarding(forwards))
        put_back(kIpForward, host.ip_forward_before, host, store_);
    if (loaded.complete() &&
        std::none_of(records.begin(), records.end(),
                     [](const Publication& p) { return p.address6.has_value(); }) &&
        !needs_ipv6_forwarding(forwards))
        put_back(kIp6Forward, host.ip6_forward_before, host, store_);
    if (!applied.proxy) remove_log(forward_proxy_log(store_.dir()));
    std::vector<std::string> lines;
    for (const auto& f : forwards)
        lines.push_back(f.describe());
    return lines;
}

namespace {

// Which of `forwards` are whole in the kernel: every port's element, and the
// proxy when a forward to another machine needs one.
std::vector<bool> in_force(const std::vector<Forward>& forwards, const AppliedForwards& applied) {
    std::vector<bool> out;
    if (forwards.empty()) return out;
    ForwardFirewall firewall;
    std::map<ForwardSet, std::set<std::vector<std::uint8_t>>> keys;
    for (ForwardSet s : {ForwardSet::redirect, ForwardSet::dnat4, ForwardSet::dnat6})
        keys[s] = firewall.keys(s);
    const bool proxy_up = applied.proxy && process_running(*applied.proxy);
    for (const auto& f : forwards) {
        bool active = std::find(applied.forwards.begin(), applied.forwards.end(), f) !=
                      applied.forwards.end();
        for (std::uint32_t p = f.host.first; p <= f.host.last && active; ++p) {
            const auto e = port_element(f, static_cast<std::uint16_t>(p));
            active = keys[e.set].contains(e.key);
        }
        if (f.to && f.proto == Proto::tcp) active = active && proxy_up;
        out.push_back(active);
    }
    return out;
}

}  // namespace

std::vector<ForwardStatus> Forwarder::list() {
    const auto forwards = read_config();
    const auto active = in_force(forwards, load_applied_forwards(store_));
    std::vector<ForwardStatus> out;
    for (std::size_t i = 0; i < forwards.size(); ++i)
        out.push_back({forwards[i], active[i]});
    return out;
}

std::vector<std::string> Forwarder::restore() {
    auto lock = store_.lock();
    const auto applied = load_applied_forwards(store_);
    const auto active = in_force(applied.forwards, applied);
    if (std::all_of(active.begin(), active.end(), [](bool a) { return a; })) return {};
    require_capabilities();
    config_ = applied.config;
    return apply_locked(applied.forwards);
}

}  // namespace portpub
