// The command line: each command's options and help, and the call to the publisher or the
// forwarder that does its work. Every exception stops here as one line on stderr; a usage
// error names its command and exits 2.
#include "portpub/cli.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/fd.hpp"
#include "portpub/foreign_drops.hpp"
#include "portpub/forward_config.hpp"
#include "portpub/forward_proxy.hpp"
#include "portpub/forwarder.hpp"
#include "portpub/kernel_host.hpp"
#include "portpub/logger.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/oci_hook.hpp"
#include "portpub/proxy_plan.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_server.hpp"
#include "portpub/publisher.hpp"
#include "portpub/version.hpp"
#include "portpub/watcher.hpp"
#include "portpub/watcher_process.hpp"

namespace portpub {

namespace po = boost::program_options;

namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

class UsageError : public Error {
  public:
    UsageError(const std::string& what, std::string command)
        : Error(what), command_(std::move(command)) {}
    const std::string& command() const { return command_; }

  private:
    std::string command_;
};

// Every help fits one 80x24 screen and ends with an example (cli_test.cpp).
const char* const kMainHelp = R"(Usage: portpub [up] -p SPEC... --netns PATH [options]
       portpub COMMAND [options]    (portpub COMMAND --help: its options)

Publishes ports of a container's network namespace the way `docker run -p`
does: a bridge, a veth pair, an address and nftables DNAT rules.

Commands:
  up        publish ports (the default command)
  down      remove what `up` made for one container
  ls        list published containers
  check     compare the kernel with the records; exit 1 on a difference
  restore   re-create what is missing (after `nft flush ruleset`, say)
  gc        remove what belongs to containers that are gone
  watch     put back what goes missing, as it goes (for systemd)
  forward   forward a port of this host, without a container
  oci-hook  run by an OCI runtime as a hook (createRuntime, poststop)
  version   print the version
  help      this help, or a command's (help up)

With CNI_COMMAND set and no arguments, portpub is a CNI plugin (CNI 1.0.0,
1.1.0). The manual: man 8 portpub.

Example:
  portpub -p 8080:80/tcp -p 5353:53/udp --netns /run/netns/web
)";

const char* const kUpHelp =
    R"(SPEC, repeatable, is [ip:][hostPort:]containerPort[/tcp|/udp|/sctp], such as
  80 (random host port), 8080:80 (every address), 192.0.2.1:8080:80 (that one),
  [2001:db8::1]:8080:80, 8000-8010:80-90 (one to one), 8000-8010:80 (first free)
Example:
  portpub up -p 8080:80 -p 5353:53/udp --netns /run/netns/web
)";

void add_state_option(po::options_description& opts) {
    opts.add_options()("state-dir",
                       po::value<std::string>()->default_value(kDefaultStateDir)->value_name("DIR"),
                       "directory of the records");
}

// Boost's parser erases each consumed token from the front of a vector, which
// is quadratic in the number of tokens (10,000 -p options took 0.6 s). So the
// "-p VALUE" pairs go to Boost in slices, which -p's composing() merges, and
// every other option in one slice of its own, where Boost checks it as usual.
std::vector<std::vector<std::string>> slice_publish_options(const std::vector<std::string>& args) {
    constexpr std::size_t kSlice = 128;               // tokens: 64 pairs
    std::vector<std::vector<std::string>> slices(1);  // [0]: everything but -p options
    auto publish_slice = [&]() -> std::vector<std::string>& {
        if (slices.size() == 1 || slices.back().size() >= kSlice) slices.emplace_back();
        return slices.back();
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--") {  // the rest is not options: leave it all to Boost
            slices[0].insert(slices[0].end(), args.begin() + static_cast<long>(i), args.end());
            break;
        }
        const bool pair = (a == "-p" || a == "--publish") && i + 1 < args.size() &&
                          !args[i + 1].empty() && args[i + 1][0] != '-';
        const bool joined = (a.size() > 2 && a.rfind("-p", 0) == 0 && a[2] != '-') ||
                            a.rfind("--publish=", 0) == 0;  // -p8080:80, --publish=8080:80
        if (pair) {
            auto& slice = publish_slice();
            slice.push_back(a);
            slice.push_back(args[++i]);
        } else if (joined) {
            publish_slice().push_back(a);
        } else {
            slices[0].push_back(a);
        }
    }
    return slices;
}

po::variables_map parse(const std::string& command, const po::options_description& opts,
                        const std::vector<std::string>& args) {
    po::variables_map vm;
    try {
        // No positional arguments: a stray word (a spec without -p) is an error.
        const po::positional_options_description none;
        for (const auto& slice : slice_publish_options(args))
            po::store(po::command_line_parser(slice).options(opts).positional(none).run(), vm);
        po::notify(vm);
    } catch (const po::too_many_positional_options_error&) {
        throw UsageError(command == "up" ? "unexpected argument: every port spec needs its own -p "
                                           "(e.g. -p 8080:80)"
                                         : "unexpected argument",
                         command);
    } catch (const po::error& e) {
        throw UsageError(e.what(), command);
    }
    return vm;
}

// One line an option, "  -p, --publish SPEC  text (default: X)", in one
// column; a text too long for 80 columns goes on under itself. --help is left
// out: whoever reads this used it.
std::string option_lines(const po::options_description& opts) {
    struct Row {
        std::string name, text;
    };
    std::vector<Row> rows;
    std::size_t width = 0;
    for (const auto& o : opts.options()) {
        if (o->long_name() == "help") continue;  // the reader found it
        const auto brief = o->canonical_display_name(po::command_line_style::allow_dash_for_short);
        std::string name = brief.rfind('-', 0) == 0 ? brief + ", " : "    ";
        name += o->canonical_display_name(po::command_line_style::allow_long);
        std::string text = o->description();
        if (o->semantic()->max_tokens() > 0) {
            auto value = o->semantic()->name();  // "NAME" or "NAME (=default)"
            if (const auto at = value.find(" (="); at != std::string::npos) {
                text += " (default: " + value.substr(at + 3, value.size() - at - 4) + ")";
                value.resize(at);
            }
            name += " " + value;
        }
        width = std::max(width, name.size());
        rows.push_back({std::move(name), std::move(text)});
    }
    constexpr std::size_t kColumns = 80;
    const std::size_t indent = 2 + width + 2;
    std::ostringstream out;
    for (const auto& r : rows) {
        out << "  " << r.name << std::string(width - r.name.size() + 2, ' ');
        std::size_t column = indent;
        std::istringstream words(r.text);
        std::string word;
        bool first = true;
        while (words >> word) {
            if (!first && column + 1 + word.size() > kColumns) {
                out << "\n" << std::string(indent, ' ');
                column = indent;
                first = true;
            }
            if (!first) {
                out << ' ';
                ++column;
            }
            out << word;
            column += word.size();
            first = false;
        }
        out << "\n";
    }
    return out.str();
}

std::string help_text(const std::string& usage, const po::options_description& opts,
                      const std::string& tail = "") {
    return usage + "\n\n" + option_lines(opts) + tail;
}

// --udp-timeout: whole seconds, 1 to a day. Boost would read "-1" as the
// largest unsigned number.
std::uint32_t udp_timeout(const std::string& text) {
    constexpr std::uint32_t kMax = 86400;
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < 1 || v > kMax)
        throw UsageError("--udp-timeout takes whole seconds from 1 to " + std::to_string(kMax) +
                             " (a day), not '" + shown(text) + "'",
                         "up");
    return v;
}

// --loopback: true for kernel rewriting, false for the proxy alone.
bool loopback_mode(const std::string& text) {
    try {
        return parse_loopback_mode(text, "--loopback");
    } catch (const Error& e) {
        throw UsageError(e.what(), "up");
    }
}

// --cgroup: an absolute path, its symlinks resolved (the host state keeps it).
std::string cgroup_dir(const std::string& text) {
    std::error_code ec;
    const auto path = std::filesystem::canonical(text, ec);
    if (text.empty() || text.front() != '/' || ec)
        throw UsageError("--cgroup takes the absolute path of a cgroup v2 directory, not '" +
                             shown(text) + "'" + (ec ? " (" + ec.message() + ")" : ""),
                         "up");
    return path.string();
}

int cmd_up(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()(
        "publish,p", po::value<std::vector<std::string>>()->composing()->value_name("SPEC"),
        "publish a port (SPEC, below)")("netns", po::value<std::string>()->value_name("PATH"),
                                        "the container's network namespace file (required)")(
        "id", po::value<std::string>()->value_name("ID"), "container id (default: from --netns)")(
        "bridge", po::value<std::string>()->default_value("portpub0")->value_name("NAME"),
        "bridge to attach to")(
        "subnet", po::value<std::string>()->default_value("10.77.0.0/16")->value_name("CIDR"),
        "container subnet")("ipv6", "IPv6 too, in the bridge's unique local /64")(
        "subnet6", po::value<std::string>()->value_name("CIDR"),
        "IPv6 container subnet (implies --ipv6)")(
        "ifname", po::value<std::string>()->default_value("eth0")->value_name("NAME"),
        "interface in the container")("no-proxy", "no userland proxy (loopback: kernel only)")(
        "loopback", po::value<std::string>()->default_value("kernel")->value_name("MODE"),
        "kernel or proxy serves loopback")("cgroup", po::value<std::string>()->value_name("DIR"),
                                           "cgroup v2 to rewrite in (default: the root)")(
        "no-reserve", "do not hold the published ports with sockets")(
        "udp-timeout", po::value<std::string>()->default_value("90")->value_name("SECONDS"),
        "idle time of a proxied UDP flow")(
        "firewall", po::value<std::string>()->default_value("auto")->value_name("MODE"),
        "none: leave host firewalls alone")("no-watch", "start no watcher (see portpub watch)")(
        "json", "print the result as JSON");
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    auto vm = parse("up", opts, args);
    if (vm.count("help")) {
        std::cout << help_text("Usage: portpub [up] -p SPEC... --netns PATH [options]", opts,
                               kUpHelp);
        return kOk;
    }
    if (!vm.count("netns")) throw UsageError("the option '--netns' is required", "up");
    if (!vm.count("publish")) throw UsageError("give at least one -p SPEC", "up");
    UpRequest req;
    req.specs = vm["publish"].as<std::vector<std::string>>();
    req.netns = vm["netns"].as<std::string>();
    if (vm.count("id")) req.id = vm["id"].as<std::string>();
    req.bridge = vm["bridge"].as<std::string>();
    req.subnet = vm["subnet"].as<std::string>();
    req.ipv6 = vm.count("ipv6") > 0;
    if (vm.count("subnet6")) req.subnet6 = vm["subnet6"].as<std::string>();
    req.ifname = vm["ifname"].as<std::string>();
    req.proxy = !vm.count("no-proxy");
    req.reserve = !vm.count("no-reserve");
    req.udp_timeout = udp_timeout(vm["udp-timeout"].as<std::string>());
    req.watch = !vm.count("no-watch");
    req.rewrite = loopback_mode(vm["loopback"].as<std::string>());
    if (vm.count("cgroup")) req.cgroup = cgroup_dir(vm["cgroup"].as<std::string>());
    try {
        req.pass_firewalls = parse_firewall_mode(vm["firewall"].as<std::string>(), "--firewall") ==
                             FirewallMode::automatic;
    } catch (const Error& e) {
        throw UsageError(e.what(), "up");
    }

    Publisher publisher(vm["state-dir"].as<std::string>());
    auto pub = publisher.up(req);
    for (const auto& note : publisher.notes())
        std::cerr << "portpub: " << note << "\n";
    if (vm.count("json"))
        std::cout << to_report(pub).dump() << "\n";
    else
        std::cout << docker_port_lines(listed_mappings(pub));
    return kOk;
}

int cmd_down(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()("id", po::value<std::string>()->value_name("ID"), "container id")(
        "netns", po::value<std::string>()->value_name("PATH"),
        "the container's network namespace file");
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    auto vm = parse("down", opts, args);
    if (vm.count("help")) {
        std::cout << help_text("Usage: portpub down (--id ID | --netns PATH)", opts,
                               "\nRemoves the map elements, veth, address and record of one "
                               "container.\nRunning it twice, or after the namespace is gone, "
                               "is fine.\n\nExample:\n  portpub down --netns /run/netns/web\n");
        return kOk;
    }
    if (vm.count("id") == vm.count("netns"))
        throw UsageError("give exactly one of --id and --netns", "down");
    DownRequest req;
    if (vm.count("id")) req.id = vm["id"].as<std::string>();
    if (vm.count("netns")) req.netns = vm["netns"].as<std::string>();
    Publisher publisher(vm["state-dir"].as<std::string>());
    const auto gone = publisher.down(req);
    for (const auto& note : publisher.notes())
        std::cerr << "portpub: " << note << "\n";
    if (gone) {
        std::cout << gone->id << "\n";
    } else {
        std::cerr << "portpub: nothing is published for " << (req.id ? *req.id : *req.netns)
                  << "\n";
    }
    return kOk;
}

int cmd_ls(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()("json", "print JSON");
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    auto vm = parse("ls", opts, args);
    if (vm.count("help")) {
        std::cout << help_text(
            "Usage: portpub ls [--json]", opts,
            "\nLists published containers, one a line: id, address, namespace, proxy,\n"
            "who serves loopback (kernel, proxy or none), and ports as `docker ps` shows\n"
            "them.\n\nExample:\n"
            "  portpub ls --json\n");
        return kOk;
    }
    const auto records = Publisher(vm["state-dir"].as<std::string>()).list();
    for (const auto& u : records.unusable)
        std::cerr << "portpub: " << u.advice() << "\n";
    const auto& all = records.usable;
    auto running = [](const Publication& p) {
        return p.proxy && process_running({p.proxy->pid, p.proxy->start_time});
    };
    if (vm.count("json")) {
        auto out = nlohmann::json::array();
        for (const auto& p : all) {
            auto report = to_report(p);
            if (p.proxy) report["proxy"]["running"] = running(p);
            out.push_back(std::move(report));
        }
        std::cout << out.dump() << "\n";
        return kOk;
    }
    std::vector<std::array<std::string, 6>> rows{
        {"ID", "ADDRESS", "NETNS", "PROXY", "LOOPBACK", "PORTS"}};
    for (const auto& p : all) {
        // A dead proxy of a live container comes back with `up` (or
        // `restore`); a container that is gone is gc's to remove.
        std::string proxy = !namespace_alive(p) ? "namespace gone (portpub gc removes it)"
                            : !p.proxy          ? "-"
                            : running(p)        ? "pid " + std::to_string(p.proxy->pid)
                                                : "dead (run up again)";
        rows.push_back({p.id, p.address.str(), p.netns, proxy, loopback_service(p),
                        docker_ps_ports(listed_mappings(p))});
    }
    std::array<std::size_t, 5> width{};
    for (const auto& r : rows)
        for (std::size_t i = 0; i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < width.size(); ++i)
            std::cout << r[i] << std::string(width[i] - r[i].size() + 3, ' ');
        std::cout << r[5] << "\n";
    }
    return kOk;
}

int cmd_oci_hook(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    auto vm = parse("oci-hook", opts, args);
    if (vm.count("help")) {
        std::cout << help_text(
            "Usage: portpub oci-hook [--state-dir DIR]   (the container's state on stdin)", opts,
            std::string(
                "\nRun by an OCI runtime (runc, crun, Podman) as a hook. At createRuntime it\n"
                "publishes the ports of the annotation ") +
                kPortsAnnotation +
                " (comma-separated -p\nspecs) in /proc/PID/ns/net, or in the namespace file " +
                kNetnsAnnotation + " names.\n" + kBridgeAnnotation + ", " + kSubnetAnnotation +
                ", " + kSubnet6Annotation + " and " + kIpv6Annotation +
                "\n(true/false) stand for --bridge, --subnet, --subnet6 and --ipv6. At poststop "
                "it\n"
                "unpublishes. It prints nothing on stdout; an error is one line on stderr and\n"
                "fails the hook.\n\nExample (Podman, with hooks/portpub.json in DIR):\n"
                "  podman run --hooks-dir DIR --network none \\\n"
                "      --annotation io.portpub.ports=8080:80 ...\n");
        return kOk;
    }
    // A state is a few KiB at most; more is not a runtime talking.
    constexpr std::size_t kMaxState = 1 << 20;
    std::string text;
    char buf[4096];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(std::cin.gcount()));
        if (text.size() > kMaxState)
            throw Error(
                "the OCI state on stdin is over 1 MiB; portpub oci-hook must be run by a "
                "runtime as a hook");
    }
    const auto action = hook_action(parse_oci_state(text));
    Publisher publisher(vm["state-dir"].as<std::string>());
    switch (action.kind) {
        case HookAction::Kind::publish: {
            publisher.up(action.up);
            for (const auto& note : publisher.notes())
                std::cerr << "portpub: " << note << "\n";
            break;
        }
        case HookAction::Kind::unpublish: {
            DownRequest req{action.id, std::nullopt, {}};
            req.only_if = [&action](const Publication& p) -> std::optional<std::string> {
                if (poststop_is_for(p, action.origin, namespace_alive(p))) return std::nullopt;
                return "the publication of " + p.id + " (namespace " + p.netns +
                       ") is another container's than this poststop's: left alone";
            };
            publisher.down(req);
            for (const auto& note : publisher.notes())
                std::cerr << "portpub: " << note << "\n";
            break;
        }
        case HookAction::Kind::nothing:
            std::cerr << "portpub: " << action.why << "\n";
            break;
    }
    return kOk;
}

// A command whose only options are --help and --state-dir (and `extra`).
po::variables_map parse_simple(const std::string& command, const std::vector<std::string>& args,
                               po::options_description& opts, const char* usage, const char* text) {
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    auto vm = parse(command, opts, args);
    if (vm.count("help")) std::cout << help_text(usage, opts, text);
    return vm;
}

int cmd_gc(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    auto vm = parse_simple(
        "gc", args, opts, "Usage: portpub gc",
        "\nRemoves what belongs to containers whose namespace is gone (records, map\n"
        "elements, veths, proxies, addresses), finishes an up or down that was killed\n"
        "half way, and removes proxies, map elements and veths no record accounts for.\n"
        "Prints one line for each thing removed.\n\nExample:\n  portpub gc\n");
    if (vm.count("help")) return kOk;
    Publisher publisher(vm["state-dir"].as<std::string>());
    const auto removed = publisher.gc();
    for (const auto& line : removed)
        std::cout << line << "\n";
    for (const auto& note : publisher.notes())
        std::cerr << "portpub: " << note << "\n";
    if (removed.empty()) std::cout << "nothing to remove\n";
    return kOk;
}

int cmd_check(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()("id", po::value<std::string>()->value_name("ID"),
                       "check this container only");
    auto vm = parse_simple(
        "check", args, opts, "Usage: portpub check [--id ID]",
        "\nCompares the kernel with the records: the table's chains, each container's map\n"
        "elements, veth, bridge, namespace and proxy; without --id, also what no record\n"
        "accounts for. Prints each difference and exits 1 when there is one.\n\n"
        "Example:\n  portpub check || portpub restore\n");
    if (vm.count("help")) return kOk;
    std::optional<std::string> id;
    if (vm.count("id")) id = vm["id"].as<std::string>();
    Publisher publisher(vm["state-dir"].as<std::string>());
    const auto differences = publisher.differences_from_records(id);
    for (const auto& line : differences)
        std::cout << line << "\n";
    if (!differences.empty()) {
        std::cerr << "portpub check: " << differences.size()
                  << (differences.size() == 1 ? " difference" : " differences")
                  << "; portpub restore re-creates what is missing, portpub gc removes "
                     "the rest\n";
        return kFailed;
    }
    const auto count = id ? 1 : publisher.list().usable.size();
    std::cout << "ok: " << count << (count == 1 ? " publication matches" : " publications match")
              << " the kernel\n";
    return kOk;
}

int cmd_restore(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    auto vm = parse_simple(
        "restore", args, opts, "Usage: portpub restore",
        "\nRe-creates from the records what is missing in the kernel: the table and its\n"
        "chains (after `nft flush ruleset` or a firewalld reload), map elements, the\n"
        "bridge, veths, and proxies that died. Prints what it re-created; exits 1 when a\n"
        "container could not be restored.\n\nExample:\n  portpub restore\n");
    if (vm.count("help")) return kOk;
    Publisher publisher(vm["state-dir"].as<std::string>());
    const auto result = publisher.restore();
    for (const auto& line : result.done)
        std::cout << line << "\n";
    for (const auto& note : publisher.notes())
        std::cerr << "portpub: " << note << "\n";
    for (const auto& line : result.failed)
        std::cerr << "portpub restore: " << line << "\n";
    if (result.done.empty() && result.failed.empty()) std::cout << "nothing to restore\n";
    return result.failed.empty() ? kOk : kFailed;
}

// The watch lock for `portpub watch` run by hand or by systemd: a watcher
// `up` started gives way to it; another such watcher is an error.
WatchLock take_over_watch(const std::string& state_dir, int signal_fd) {
    for (int tries = 0; tries < 100; ++tries) {
        WatchLock lock(state_dir);
        if (lock.held()) return lock;
        const auto other = running_watcher(state_dir);
        if (other && !other->while_published)
            throw Error("another portpub watch runs for " + state_dir + " (pid " +
                        std::to_string(other->process.pid) + "); one is enough");
        if (other) stop_process(other->process, std::chrono::milliseconds(2000), kWatcherName);
        pollfd p{signal_fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) throw Error("watch: stopped before it began");
    }
    throw Error("watch: " + watch_lock_path(state_dir).string() +
                " stays locked by a process that is not portpub's watcher; find it with "
                "fuser or lsof");
}

int cmd_watch(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()(kWhilePublished + 2,
                       "exit once nothing is published or forwarded "
                       "(the watcher up starts)")("ready-fd", po::value<int>()->value_name("FD"),
                                                  "say \"ready\" on FD once watching");
    auto vm = parse_simple(
        "watch", args, opts, "Usage: portpub watch",
        "\nRuns until SIGTERM: puts back what the records say is missing whenever\n"
        "nftables changes (nft flush ruleset, nft -f, iptables-restore, a firewall\n"
        "reload), firewalld reloads or an address or link is deleted, a line for each\n"
        "repair on stderr. For systemd; up starts one by itself (see --no-watch).\n\n"
        "Example:\n  portpub watch\n");
    if (vm.count("help")) return kOk;
    const bool while_published = vm.count(kWhilePublished + 2) > 0;
    const int ready_fd = vm.count("ready-fd") ? vm["ready-fd"].as<int>() : -1;
    const auto state_dir = vm["state-dir"].as<std::string>();
    sigset_t signals;
    sigemptyset(&signals);
    // An ignored signal never reaches a signalfd: whatever the caller ignored
    // is taken back first. SIGCHLD: the proxies a repair restarts are its
    // children, reaped as they exit.
    for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGCHLD}) {
        ::signal(sig, SIG_DFL);
        sigaddset(&signals, sig);
    }
    if (::sigprocmask(SIG_BLOCK, &signals, nullptr) != 0)
        throw_errno("watch: cannot block signals");
    UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
    if (!signal_fd) throw_errno("watch: cannot make a signalfd");

    bool said = ready_fd < 0;
    auto say = [ready_fd, &said](const std::string& line) {
        if (said) return;  // once: the descriptor is closed after it
        said = true;
        const auto text = line + "\n";
        (void)!::write(ready_fd, text.data(), text.size());
        ::close(ready_fd);
    };
    std::unique_ptr<Logger> file_log;
    std::function<void(const std::string&)> log = [](const std::string& line) {
        std::cerr << "portpub watch: " << line << "\n";
    };
    try {
        ::prctl(PR_SET_NAME, kWatcherName);
        WatchLock lock(state_dir);
        if (!lock.held()) {
            if (while_published) {  // `up` started it, and another was quicker
                say("another");
                return kOk;
            }
            // Closing any descriptor of the file drops this process's record
            // locks on it: the failed one goes before the next is taken.
            lock.release();
            lock = take_over_watch(state_dir, signal_fd.get());
        }
        if (ready_fd >= 0) {
            // Started detached by `up`: its stderr is /dev/null.
            (void)!::chdir("/");
            file_log = std::make_unique<Logger>(watch_log_path(state_dir));
            log = [&file_log](const std::string& line) { file_log->write(line); };
        }
        Watcher watcher(state_dir, std::move(lock), while_published, log);
        watcher.run(signal_fd.get(), [&] { say("ready"); });
    } catch (const std::exception& e) {
        say(std::string("error: ") + e.what());
        if (file_log) file_log->write(std::string("exits: ") + e.what());
        throw;
    }
    return kOk;
}

const char* const kForwardUsage =
    "Usage: portpub forward -p HOSTPORT:PORT[/proto]... [--to ADDR]   (add, apply)\n"
    "       portpub forward rm HOSTPORT:PORT[/proto] [--to ADDR]      (remove, apply)\n"
    "       portpub forward ls [--json] | apply";

const char* const kForwardHelp = R"(
Forwards a port of this host to a program of this host (no --to: kernel
redirect) or to another machine (--to: DNAT and masquerade), for other hosts,
this host's own addresses, 127.0.0.1 and ::1 alike. The file is the truth: -p
and rm edit it, then apply it in one nftables transaction; apply makes the
kernel what the file says (run it at boot). Ranges map one to one
(8000-8010:3000-3010); proto tcp (default), udp or sctp.

Example:
  portpub forward -p 80:5000/tcp
  portpub forward -p 8080:3000 --to 192.0.2.10
)";

// Each -p value (and --to) as forwards; a bad one is a usage error naming it.
std::vector<Forward> forwards_of(const std::vector<std::string>& specs,
                                 const po::variables_map& vm) {
    std::optional<std::string> to;
    if (vm.count("to")) to = vm["to"].as<std::string>();
    std::vector<Forward> out;
    for (const auto& s : specs) {
        try {
            out.push_back(parse_forward(s, to));
        } catch (const Error& e) {
            throw UsageError(e.what(), "forward");
        }
    }
    return out;
}

int cmd_forward(std::vector<std::string> args) {
    std::string verb = "add";
    if (!args.empty() && (args[0] == "ls" || args[0] == "rm" || args[0] == "apply")) {
        verb = args[0];
        args.erase(args.begin());
    }
    po::options_description opts("Options");
    opts.add_options()("publish,p",
                       po::value<std::vector<std::string>>()->composing()->value_name("SPEC"),
                       "HOSTPORT:PORT[/proto] to forward; repeatable")(
        "to", po::value<std::string>()->value_name("ADDR"),
        "the machine to forward to (default: this host)")(
        "config",
        po::value<std::string>()->default_value(kDefaultForwardConfig)->value_name("FILE"),
        "the forward file")("json", "ls: print JSON")("no-watch",
                                                      "start no watcher (see portpub watch)");
    add_state_option(opts);
    opts.add_options()("help,h", "show this help");
    std::vector<std::string> positional;
    if (verb == "rm") {  // rm SPEC: the spec needs no -p
        std::vector<std::string> rest;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const bool takes_value = args[i] == "--to" || args[i] == "--config" ||
                                     args[i] == "--state-dir" || args[i] == "-p" ||
                                     args[i] == "--publish";
            if (!args[i].empty() && args[i][0] != '-') {
                positional.push_back(args[i]);
            } else {
                rest.push_back(args[i]);
                if (takes_value && i + 1 < args.size()) rest.push_back(args[++i]);
            }
        }
        args = rest;
    }
    auto vm = parse("forward", opts, args);
    if (vm.count("help")) {
        std::cout << help_text(kForwardUsage, opts, kForwardHelp);
        return kOk;
    }
    Forwarder forwarder(vm["state-dir"].as<std::string>(), vm["config"].as<std::string>(),
                        !vm.count("no-watch"));
    auto specs = vm.count("publish") ? vm["publish"].as<std::vector<std::string>>()
                                     : std::vector<std::string>{};
    specs.insert(specs.end(), positional.begin(), positional.end());
    if (verb != "add" && verb != "rm" && (!specs.empty() || vm.count("to")))
        throw UsageError("forward " + verb + " takes no -p or --to", "forward");
    if (verb != "ls" && vm.count("json")) throw UsageError("--json is for forward ls", "forward");
    if (verb == "ls") {
        const auto all = forwarder.list();
        if (vm.count("json")) {
            auto out = nlohmann::json::array();
            for (const auto& s : all) {
                nlohmann::json e = {{"publish", s.forward.publish()}, {"active", s.active}};
                if (s.forward.to) e["to"] = s.forward.to->str();
                out.push_back(std::move(e));
            }
            std::cout << out.dump() << "\n";
            return kOk;
        }
        for (const auto& s : all)
            std::cout << s.forward.describe()
                      << (s.active ? "" : "   (not active: run portpub forward apply)") << "\n";
        return kOk;
    }
    std::vector<std::string> lines;
    if (verb == "apply") {
        lines = forwarder.apply();
        if (lines.empty()) std::cout << "no forwards\n";
    } else if (verb == "rm") {
        if (specs.size() != 1)
            throw UsageError("give the one forward to remove, e.g. forward rm 80:5000", "forward");
        lines = forwarder.remove(forwards_of(specs, vm).front());
    } else {
        if (specs.empty()) throw UsageError("give at least one -p HOSTPORT:PORT", "forward");
        lines = forwarder.add(forwards_of(specs, vm));
    }
    for (const auto& l : lines)
        std::cout << l << "\n";
    for (const auto& note : forwarder.notes())
        std::cerr << "portpub: " << note << "\n";
    return kOk;
}

int cmd_version(const std::vector<std::string>& args) {
    po::options_description opts("Options");
    opts.add_options()("help,h", "show this help");
    auto vm = parse("version", opts, args);
    if (vm.count("help")) {
        std::cout << help_text("Usage: portpub version", opts,
                               "\nPrints the version.\n\nExample:\n  portpub version\n");
        return kOk;
    }
    std::cout << "portpub " << kVersion << "\n";
    return kOk;
}

bool is_command(const std::string& s) {
    return s == "up" || s == "down" || s == "ls" || s == "check" || s == "restore" || s == "gc" ||
           s == "oci-hook" || s == "version" || s == "help" || s == "forward" || s == "watch";
}

}  // namespace

int run_cli(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "up";
    if (!args.empty() &&
        (is_command(args[0]) || args[0] == "proxy" || args[0] == "forward-proxy")) {
        command = args[0];
        args.erase(args.begin());
    } else if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << kMainHelp;
        return args.empty() ? kUsage : kOk;
    } else if (args[0] == "--version") {
        command = "version";
        args.erase(args.begin());
    } else if (args[0].empty() || args[0][0] != '-') {
        std::cerr << "portpub: unknown command '" << args[0] << "' (see portpub --help)\n";
        return kUsage;
    }
    try {
        if (command == "proxy") return run_proxy(args);                  // internal: started by up
        if (command == "forward-proxy") return run_forward_proxy(args);  // started by forward
        if (command == "up") return cmd_up(args);
        if (command == "forward") return cmd_forward(args);
        if (command == "down") return cmd_down(args);
        if (command == "ls") return cmd_ls(args);
        if (command == "check") return cmd_check(args);
        if (command == "restore") return cmd_restore(args);
        if (command == "gc") return cmd_gc(args);
        if (command == "watch") return cmd_watch(args);
        if (command == "oci-hook") return cmd_oci_hook(args);
        if (command == "help") {  // help COMMAND: that command's help
            if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) args.clear();
            if (args.size() > 1 || (args.size() == 1 && !is_command(args[0])))
                throw UsageError("give one command, e.g. portpub help up", "help");
            if (args.size() == 1 && args[0] != "help") {
                std::vector<std::string> again{argv[0], args[0], "--help"};
                std::vector<char*> raw;
                for (auto& a : again)
                    raw.push_back(a.data());
                return run_cli(static_cast<int>(raw.size()), raw.data());
            }
            std::cout << kMainHelp;
            return kOk;
        }
        return cmd_version(args);
    } catch (const UsageError& e) {
        std::cerr << "portpub " << e.command() << ": " << e.what() << " (see portpub "
                  << e.command() << " --help)\n";
        return kUsage;
    } catch (const std::exception& e) {
        std::cerr << "portpub: " << e.what() << "\n";
        return kFailed;
    }
}

}  // namespace portpub
