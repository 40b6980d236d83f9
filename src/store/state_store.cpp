// The state directory on disk: flock() locks, records read one by one (a damaged one, or two
// naming the same container's parts, set apart instead of failing the rest), host.json, and
// atomic writes in a directory only portpub's user can write to.
#include "portpub/state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "portpub/error.hpp"
#include "portpub/naming.hpp"

namespace portpub {

namespace fs = std::filesystem;

namespace {

// The missing parents of `dir`, 0755 as /run is: never wider, whatever the
// umask (a world-writable parent would let anyone swap the state directory).
void make_parents(const fs::path& dir) {
    fs::path at;
    for (const auto& part : dir.parent_path()) {
        at /= part;
        if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST)
            return;  // the state directory's own mkdir names the problem
    }
}

// A directory of portpub's own is refused when another user owns it or
// others may write to it, for they could then plant or swap records.
void check_private_dir(const fs::path& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) throw_errno("cannot stat " + shown(dir.string()));
    if (!S_ISDIR(st.st_mode))
        throw Error("state path " + shown(dir.string()) +
                    " is not a directory; pass another --state-dir");
    if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error("state directory " + shown(dir.string()) +
                    (st.st_uid != ::geteuid()
                         ? " belongs to uid " + std::to_string(st.st_uid) + ", not to portpub's"
                         : " may be written by other users (mode " + std::string(mode) + ")") +
                    "; its records steer what portpub changes: make it 0700 and root's (chmod "
                    "0700, chown root), or pass another --state-dir");
    }
}

// Created 0700 when missing, then checked as above.
void make_private_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("cannot create state directory " + shown(dir.string()));
    check_private_dir(dir);
}

void fsync_dir(const fs::path& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) throw_errno("cannot sync directory " + dir.string());
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_errno("cannot read " + path.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

nlohmann::json parse_json(const fs::path& path) {
    try {
        return nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::parse_error& e) {
        throw Error("record " + path.string() + " is not valid JSON (" + e.what() + ")");
    }
}

}  // namespace

StateStore::Lock StateStore::lock() {
    make_parents(dir_);
    make_private_dir(dir_);
    make_private_dir(containers_dir());
    const auto path = dir_ / "lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno("cannot open lock file " + path.string());
    while (::flock(fd.get(), LOCK_EX) != 0)
        if (errno != EINTR) throw_errno("cannot lock " + path.string());
    return Lock(std::move(fd));
}

namespace {

// Two records that name the same container's parts (its address, veth,
// namespace, proxy) cannot both be right: one is a copy, and a `down` of it
// would take the other's container apart. Both are set apart.
void set_apart_copies(Records& records, const fs::path& dir) {
    std::map<std::string, std::size_t> first;  // what a record names -> its index
    std::map<std::size_t, std::string> why;
    auto claim = [&](std::size_t i, const std::string& what) {
        auto [it, fresh] = first.emplace(what, i);
        if (fresh) return;
        const std::string both = "records " +
                                 (dir / (records.usable[it->second].id + ".json")).string() +
                                 " and " + (dir / (records.usable[i].id + ".json")).string() +
                                 " both name " + what + " (one is a copy of the other)";
        why.emplace(it->second, both);
        why.emplace(i, both);
    };
    for (std::size_t i = 0; i < records.usable.size(); ++i) {
        const auto& p = records.usable[i];
        claim(i, "address " + p.address.str() + " of " + p.network.subnet.str());
        if (!p.host_veth.empty()) claim(i, "veth " + p.host_veth);
        claim(i, "namespace " + std::to_string(p.netns_inode));
        if (p.proxy && p.proxy->pid > 0) claim(i, "proxy pid " + std::to_string(p.proxy->pid));
    }
    if (why.empty()) return;
    std::vector<Publication> kept;
    for (std::size_t i = 0; i < records.usable.size(); ++i) {
        if (auto it = why.find(i); it != why.end())
            records.unusable.push_back(
                {(dir / (records.usable[i].id + ".json")).string(), it->second});
        else
            kept.push_back(std::move(records.usable[i]));
    }
    records.usable = std::move(kept);
}

}  // namespace

std::string UnusableRecord::advice() const {
    return why +
           "; portpub leaves it, and what it names, alone: move it away once you know "
           "what it was";
}

StateStore::Lock StateStore::lock_shared() const {
    std::error_code ec;
    if (!fs::exists(dir_, ec)) return Lock(UniqueFd());  // nothing published: nothing to guard
    check_private_dir(dir_);
    const auto path = dir_ / "lock";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return Lock(UniqueFd());  // no command ever changed anything here
        throw_errno("cannot open lock file " + path.string());
    }
    while (::flock(fd.get(), LOCK_SH) != 0)
        if (errno != EINTR) throw_errno("cannot lock " + path.string());
    return Lock(std::move(fd));
}

Records StateStore::load_all() const {
    Records out;
    std::error_code ec;
    fs::directory_iterator it(containers_dir(), ec);
    if (ec == std::errc::no_such_file_or_directory) return out;  // nothing published yet
    if (ec)
        throw Error("cannot read the records in " + containers_dir().string() + ": " +
                    ec.message() +
                    (ec == std::errc::permission_denied ? " (run portpub as root)" : ""));
    for (const auto& entry : it) {
        const auto& path = entry.path();
        if (path.extension() != ".json") continue;  // temporary files end in .tmp
        try {
            auto p = from_record(parse_json(path), path.string());
            // The file is named after the id, and the id steers which file
            // `down` removes: a record under another name is not portpub's.
            if (p.id + ".json" != path.filename().string())
                throw Error("record " + path.string() + " holds container id '" + shown(p.id) +
                            "', not that of its file name");
            out.usable.push_back(std::move(p));
        } catch (const Error& e) {
            out.unusable.push_back({path.string(), e.what()});
        }
    }
    std::sort(out.usable.begin(), out.usable.end(),
              [](const Publication& a, const Publication& b) { return a.id < b.id; });
    set_apart_copies(out, containers_dir());
    std::sort(out.unusable.begin(), out.unusable.end(),
              [](const UnusableRecord& a, const UnusableRecord& b) { return a.file < b.file; });
    return out;
}

void StateStore::save(const Publication& p) {
    write_atomically(containers_dir() / (p.id + ".json"), to_record(p).dump(1) + "\n");
}

void StateStore::remove(const std::string& id) {
    const auto path = containers_dir() / (id + ".json");
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw_errno("cannot remove record " + path.string());
    }
    fsync_dir(containers_dir());
}

HostState StateStore::load_host() const {
    HostState h;
    const auto path = dir_ / "host.json";
    if (!fs::exists(path)) return h;
    try {
        auto j = parse_json(path);
        if (j.contains("ip_forward_before"))
            h.ip_forward_before = j.at("ip_forward_before").get<std::string>();
        if (j.contains("ip6_forward_before"))
            h.ip6_forward_before = j.at("ip6_forward_before").get<std::string>();
        for (const auto& [name, b] : j.at("bridges").items()) {
            // The names steer which links portpub deletes.
            validate_ifname(name, "bridge name");
            auto& bridge = h.bridges[name];
            bridge.created = b.at("created").get<bool>();
            bridge.address_added = b.at("address_added").get<bool>();
            bridge.brought_up = b.value("brought_up", false);
            bridge.address6_added = b.value("address6_added", false);
            // Before 0.7: nothing added to the firewalls beside portpub.
            bridge.iptables_accepts = b.value("iptables_accepts", false);
            bridge.ip6tables_accepts = b.value("ip6tables_accepts", false);
            bridge.firewalld_zone = b.value("firewalld_zone", "");
            // The zone is passed to firewalld, and named in messages.
            if (!bridge.firewalld_zone.empty()) validate_ifname(bridge.firewalld_zone, "zone");
        }
        if (auto it = j.find("bridges_before_forwarding"); it != j.end())
            for (const auto& name : *it) {
                validate_ifname(name.get<std::string>(), "bridge name");
                h.bridges_before_forwarding.insert(name.get<std::string>());
            }
        for (auto [key, made] : {std::pair{"iptables_made", &h.iptables_made},
                                 std::pair{"ip6tables_made", &h.ip6tables_made}})
            if (auto it = j.find(key); it != j.end())
                *made = {it->at("table").get<bool>(), it->at("chain").get<bool>()};
        if (auto it = j.find("rewrite_cgroup"); it != j.end()) {
            h.rewrite_cgroup = it->get<std::string>();
            if (h.rewrite_cgroup->empty() || h.rewrite_cgroup->front() != '/')
                throw Error("a cgroup of '" + shown(*h.rewrite_cgroup) + "'");
        }
        for (const auto* v : {&h.ip_forward_before, &h.ip6_forward_before})
            if (*v && **v != "0" && **v != "1" && **v != "2")
                throw Error("a forwarding value of '" + shown(**v) + "'");
    } catch (const std::exception& e) {
        // Never overwritten from here on: it is the only account of what
        // portpub changed on the host, and a person should look at it.
        host_problem_ = "host state " + path.string() + " is unusable (" + e.what() +
                        "): portpub leaves it alone and changes nothing it would name (the " +
                        "bridge, forwarding); move it away once you know what it was";
        return HostState{};
    }
    return h;
}

void StateStore::save_host(const HostState& h) {
    if (host_problem_) return;  // see load_host
    const auto path = dir_ / "host.json";
    if (!h.ip_forward_before && !h.ip6_forward_before && h.bridges.empty() &&
        h.bridges_before_forwarding.empty() && h.iptables_made == HostState::FilterMade{} &&
        h.ip6tables_made == HostState::FilterMade{} && !h.rewrite_cgroup) {
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            throw_errno("cannot remove " + path.string());
        return;
    }
    nlohmann::json j = {{"bridges", nlohmann::json::object()}};
    if (h.ip_forward_before) j["ip_forward_before"] = *h.ip_forward_before;
    if (h.ip6_forward_before) j["ip6_forward_before"] = *h.ip6_forward_before;
    if (!h.bridges_before_forwarding.empty())
        j["bridges_before_forwarding"] = h.bridges_before_forwarding;
    if (h.rewrite_cgroup) j["rewrite_cgroup"] = *h.rewrite_cgroup;
    for (const auto& [name, b] : h.bridges) {
        auto& out = j["bridges"][name] = {{"created", b.created},
                                          {"address_added", b.address_added},
                                          {"brought_up", b.brought_up},
                                          {"address6_added", b.address6_added}};
        if (b.iptables_accepts) out["iptables_accepts"] = true;
        if (b.ip6tables_accepts) out["ip6tables_accepts"] = true;
        if (!b.firewalld_zone.empty()) out["firewalld_zone"] = b.firewalld_zone;
    }
    for (auto [key, made] : {std::pair{"iptables_made", &h.iptables_made},
                             std::pair{"ip6tables_made", &h.ip6tables_made}})
        if (*made != HostState::FilterMade{})
            j[key] = {{"table", made->table}, {"chain", made->chain}};
    write_atomically(path, j.dump(1) + "\n");
}

std::optional<std::string> StateStore::load_file(const std::string& name) const {
    const auto path = dir_ / name;
    if (!fs::exists(path)) return std::nullopt;
    return read_file(path);
}

void StateStore::save_file(const std::string& name, const std::string& text) {
    write_atomically(dir_ / name, text);
}

void StateStore::remove_file(const std::string& name) {
    const auto path = dir_ / name;
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw_errno("cannot remove " + path.string());
    }
    fsync_dir(dir_);
}

void StateStore::write_atomically(const fs::path& path, const std::string& text) {
    const fs::path tmp = path.string() + "." + std::to_string(::getpid()) + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno("cannot create " + tmp.string());
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            throw_errno("cannot write " + tmp.string(), err);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw_errno("cannot replace " + path.string(), err);
    }
    fsync_dir(path.parent_path());
}

}  // namespace portpub
