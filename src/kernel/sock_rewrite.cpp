// The socket programs through libbpf. `attach` opens the skeleton that
// `bpftool gen skeleton` built into portpub (no object file is read at run
// time), sets the namespace cookie, loads it, attaches each program to the
// cgroup with a bpf_link and pins the links and the service map under the pin
// directory; any failure unpins what it pinned. Later commands open the
// pinned map (bpf_obj_get) to add and remove entries. The map is a
// longest-prefix-match trie: an entry, a range of ports, goes in as the
// aligned blocks of port_blocks(), and is read back by joining them again.
// A change works on what the kernel does port by port (the smallest block
// wins): it reads the blocks, computes what each touched address should then
// rewrite, and writes that as blocks before it deletes those no longer
// wanted, so that a block left by a lost record can neither outlive the
// change nor overwrite another publication's. The key and value layouts are
// those of sock_rewrite.bpf.c; the load checks their sizes.
#include "portpub/sock_rewrite.hpp"

#include <netinet/in.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/fd.hpp"
#include "sock_rewrite.skel.h"

namespace portpub {

namespace {

struct ServiceKey {
    std::uint32_t prefixlen;
    std::uint8_t proto;
    std::uint8_t family;
    std::uint16_t zero;
    std::uint32_t addr[4];
    std::uint16_t port;  // network order
    std::uint16_t unused;
};
struct ServiceTarget {
    std::uint32_t addr4;
    std::uint32_t addr6[4];
    std::uint16_t offset;  // added to the dialed port, modulo 2^16
    std::uint8_t has6;
    std::uint8_t pad;
};
static_assert(sizeof(ServiceKey) == 28 && sizeof(ServiceTarget) == 24);
// The prefix of a key with the whole port: proto, family, zero, addr, port.
constexpr std::uint32_t kWholePort = (2 + 2 + 16 + 2) * 8;

// The programs, by the name their link is pinned under (program_of's order).
constexpr std::array<const char*, 8> kLinks = {"connect4", "sendmsg4", "recvmsg4", "getpeername4",
                                               "connect6", "sendmsg6", "recvmsg6", "getpeername6"};
constexpr const char* kMap = "services";
// The programs' read-only data: the cookie of the namespace they serve.
constexpr const char* kConfig = "config";

bpf_program* program_of(sock_rewrite& skel, std::size_t i) {
    bpf_program* all[] = {skel.progs.portpub_connect4, skel.progs.portpub_sendmsg4,
                          skel.progs.portpub_recvmsg4, skel.progs.portpub_getpeername4,
                          skel.progs.portpub_connect6, skel.progs.portpub_sendmsg6,
                          skel.progs.portpub_recvmsg6, skel.progs.portpub_getpeername6};
    return all[i];
}

// libbpf's messages are kept, not printed: the last warning explains a
// failed load in the error the user sees.
thread_local std::string last_libbpf_warning;
int keep_libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    char line[512];
    std::vsnprintf(line, sizeof line, format, args);
    std::string text = line;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    if (!text.empty()) last_libbpf_warning = text;
    return 0;
}

struct SkeletonDeleter {
    void operator()(sock_rewrite* s) const { sock_rewrite__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};

std::uint8_t proto_number(Proto p) {
    return p == Proto::udp ? IPPROTO_UDP : p == Proto::sctp ? IPPROTO_SCTP : IPPROTO_TCP;
}

std::uint32_t word(const IpAddress& a, int i) {
    std::uint32_t w;
    std::memcpy(&w, a.data() + 4 * i, 4);
    return w;
}

// The key of block `b` of e's ports.
ServiceKey key_of(const RewriteEntry& e, const PortBlock& b) {
    ServiceKey k{};
    k.prefixlen = kWholePort - static_cast<std::uint32_t>(b.bits);
    k.port = htons(b.first);
    k.proto = proto_number(e.proto);
    k.family = e.family == Family::v4 ? 4 : 6;
    if (e.family == Family::v4) {
        if (e.address) k.addr[0] = word(*e.address, 0);
    } else {
        k.addr[3] = htonl(1);
    }
    return k;
}

ServiceTarget target_of(const RewriteEntry& e) {
    ServiceTarget t{};
    t.addr4 = word(e.target4, 0);
    if (e.target6) {
        for (int i = 0; i < 4; ++i)
            t.addr6[i] = word(*e.target6, i);
        t.has6 = 1;
    }
    t.offset = static_cast<std::uint16_t>(e.target_port - e.port);
    return t;
}

// The ports one block of the map rewrites; nullopt for a key portpub does not
// write, which no lookup of the programs can match either (they look up
// TCP and UDP, on 127.x or every address of 127/8, and on ::1).
std::optional<RewriteEntry> entry_of(const ServiceKey& k, const ServiceTarget& t) {
    if (k.prefixlen > kWholePort || k.prefixlen < kWholePort - 16) return std::nullopt;
    if ((k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP) || k.zero != 0) return std::nullopt;
    if (k.family == 4) {
        if (k.addr[1] != 0 || k.addr[2] != 0 || k.addr[3] != 0) return std::nullopt;
        if (k.addr[0] != 0 && (ntohl(k.addr[0]) >> 24) != 127) return std::nullopt;
    } else if (k.family != 6 || k.addr[0] != 0 || k.addr[1] != 0 || k.addr[2] != 0 ||
               k.addr[3] != htonl(1)) {
        return std::nullopt;
    }
    const std::uint32_t bits = kWholePort - k.prefixlen;
    RewriteEntry e;
    e.family = k.family == 4 ? Family::v4 : Family::v6;
    e.proto = k.proto == IPPROTO_UDP ? Proto::udp : Proto::tcp;
    e.port = static_cast<std::uint16_t>(ntohs(k.port) & ~((1u << bits) - 1));
    e.last = static_cast<std::uint16_t>(e.port + ((1u << bits) - 1));
    if (e.family == Family::v4 && k.addr[0] != 0)
        e.address =
            IpAddress::from_bytes(Family::v4, reinterpret_cast<const std::uint8_t*>(k.addr));
    e.target4 = IpAddress::from_bytes(Family::v4, reinterpret_cast<const std::uint8_t*>(&t.addr4));
    if (t.has6)
        e.target6 =
            IpAddress::from_bytes(Family::v6, reinterpret_cast<const std::uint8_t*>(t.addr6));
    e.target_port = static_cast<std::uint16_t>(e.port + t.offset);
    return e;
}

struct Block {
    ServiceKey key;
    ServiceTarget target;
    RewriteEntry entry;  // the ports it holds and where they go
};

// Every block the map holds.
std::vector<Block> blocks_of(int map) {
    std::vector<Block> out;
    ServiceKey key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(map, prev, &next) == 0) {
        ServiceTarget t{};
        if (bpf_map_lookup_elem(map, &next, &t) == 0)
            if (auto e = entry_of(next, t)) {
                // The key as portpub writes it: the kernel matches only its
                // prefix, and a hand-made one may carry bits past it.
                ServiceKey k = next;
                k.port = htons(e->port);
                k.unused = 0;
                out.push_back({k, t, std::move(*e)});
            }
        key = next;
        prev = &key;
    }
    // Not the end of the map: a partial list would be taken for the whole.
    if (errno != ENOENT) throw Error("reading the service map: " + errno_text(errno));
    return out;
}

// What the kernel does with `blocks`, port by port: where blocks overlap
// (aligned blocks nest), the smallest, the longest prefix, wins.
std::vector<RewriteEntry> in_effect(const std::vector<Block>& blocks) {
    // Block size by block size, the smallest first: each size takes the
    // ports no smaller block holds.
    std::map<std::uint32_t, std::vector<RewriteEntry>, std::greater<>> by_prefix;
    for (const auto& b : blocks)
        by_prefix[b.key.prefixlen].push_back(b.entry);
    std::vector<RewriteEntry> out;
    for (const auto& [prefixlen, entries] : by_prefix) {
        auto seen = uncovered(entries, out, false);
        out.insert(out.end(), seen.begin(), seen.end());
    }
    return join_runs(std::move(out));
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// bpffs at /sys/fs/bpf, mounted there when it is not (as systemd would).
void ensure_bpffs(const std::string& pin_dir) {
    const std::string root = "/sys/fs/bpf";
    if (pin_dir.rfind(root + "/", 0) != 0) return;  // another bpffs, the caller's
    struct statfs fs {};
    if (::statfs(root.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC) return;
    if (::mount("bpf", root.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
        throw Error("mounting bpffs at " + root + ": " + errno_text(errno));
}

std::uint64_t netns_cookie() {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("a socket to read the namespace's cookie");
    std::uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
        throw_errno("reading the network namespace's cookie (SO_NETNS_COOKIE)");
    return cookie;
}

std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The pinned map at `path`; with `missing_ok`, no descriptor when there is none.
UniqueFd open_pinned(const std::string& path, bool missing_ok) {
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd && !(missing_ok && errno == ENOENT))
        throw Error("opening " + path + ": " + errno_text(errno));
    return fd;
}

// The namespace cookie the pinned programs were loaded with.
std::uint64_t pinned_cookie(const std::string& path) {
    UniqueFd map = open_pinned(path, false);
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(map.get(), &info, &len) != 0 || info.value_size < 8)
        throw Error(path + " is not the socket programs' data");
    std::vector<std::uint8_t> value(info.value_size);
    const std::uint32_t zero = 0;
    if (bpf_map_lookup_elem(map.get(), &zero, value.data()) != 0)
        throw Error("reading " + path + ": " + errno_text(errno));
    std::uint64_t cookie = 0;
    std::memcpy(&cookie, value.data(), sizeof cookie);
    return cookie;
}

}  // namespace

SockRewrite::SockRewrite(std::string pin_dir) : pin_dir_(std::move(pin_dir)) {}

std::string SockRewrite::cgroup2_root() {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream after(line.substr(dash + 3));
        std::string fstype;
        after >> fstype;
        if (fstype != "cgroup2") continue;
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, dev, root, mountpoint;
        fields >> id >> parent >> dev >> root >> mountpoint;
        return unescape_mountinfo(mountpoint);
    }
    throw Error("no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)");
}

void SockRewrite::attach(const std::string& cgroup) {
    // Pinned by a portpub of another network namespace (sharing this bpffs):
    // they rewrite that namespace's sockets, not these, and are not ours to
    // take down either.
    if (exists(pin_dir_ + "/" + kConfig) &&
        pinned_cookie(pin_dir_ + "/" + kConfig) != netns_cookie())
        throw Error("the socket programs pinned in " + pin_dir_ +
                    " serve another network namespace");
    if (attached()) {
        open_services(false);  // refuses another version's layout
        return;
    }
    detach();  // what a killed attach left half pinned
    const std::string dir = cgroup.empty() ? cgroup2_root() : cgroup;
    UniqueFd cg(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) throw Error("cgroup " + dir + ": " + errno_text(errno));
    struct statfs fs {};
    if (::fstatfs(cg.get(), &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
        throw Error("cgroup " + dir + " is not a cgroup v2 directory");
    ensure_bpffs(pin_dir_);
    const auto cookie = netns_cookie();

    libbpf_set_print(keep_libbpf_message);
    last_libbpf_warning.clear();
    auto failed = [&](const std::string& what, int err) {
        std::string text = what + ": " + errno_text(err);
        if (!last_libbpf_warning.empty()) text += " (" + last_libbpf_warning + ")";
        return Error(text);
    };
    std::unique_ptr<sock_rewrite, SkeletonDeleter> skel(sock_rewrite__open());
    if (!skel) throw failed("opening the socket programs", errno);
    skel->rodata->host_netns_cookie = cookie;
    if (int err = sock_rewrite__load(skel.get()); err != 0)
        throw failed("loading the socket programs", -err);
    if (bpf_map__key_size(skel->maps.services) != sizeof(ServiceKey) ||
        bpf_map__value_size(skel->maps.services) != sizeof(ServiceTarget))
        throw Error("the socket programs' service map does not have portpub's layout");

    if (::mkdir(pin_dir_.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error("making " + pin_dir_ + ": " + errno_text(errno));
    try {
        for (std::size_t i = 0; i < kLinks.size(); ++i) {
            std::unique_ptr<bpf_link, LinkDeleter> link(
                bpf_program__attach_cgroup(program_of(*skel, i), cg.get()));
            if (!link)
                throw failed(std::string("attaching ") + kLinks[i] + " at cgroup " + dir, errno);
            const std::string path = pin_dir_ + "/" + kLinks[i];
            if (int err = bpf_link__pin(link.get(), path.c_str()); err != 0)
                throw failed("pinning " + path, -err);
        }
        for (auto [name, map] :
             {std::pair{kMap, skel->maps.services}, std::pair{kConfig, skel->maps.rodata}}) {
            const std::string path = pin_dir_ + "/" + name;
            if (int err = bpf_map__pin(map, path.c_str()); err != 0)
                throw failed("pinning " + path, -err);
        }
    } catch (...) {
        detach();
        throw;
    }
}

bool SockRewrite::attached() const {
    return missing().empty();
}

std::vector<std::string> SockRewrite::missing() const {
    std::vector<std::string> out;
    for (const char* name : kLinks)
        if (!exists(pin_dir_ + "/" + name)) out.push_back(std::string("link ") + name);
    for (const char* name : {kMap, kConfig})
        if (!exists(pin_dir_ + "/" + name)) out.push_back(std::string("map ") + name);
    return out;
}

void SockRewrite::add(const std::vector<RewriteEntry>& entries) {
    if (entries.empty()) return;
    change(entries, {});
}

void SockRewrite::remove(const std::vector<RewriteEntry>& entries) {
    if (entries.empty()) return;
    if (!exists(pin_dir_ + "/" + kMap)) return;
    change({}, entries);
}

void SockRewrite::change(const std::vector<RewriteEntry>& add,
                         const std::vector<RewriteEntry>& remove) {
    UniqueFd map = open_services(false);
    // The addresses (with family and protocol) the change concerns, and
    // every block of them.
    std::vector<std::tuple<Family, Proto, std::optional<IpAddress>>> addresses;
    for (const auto* list : {&add, &remove})
        for (const auto& e : *list)
            addresses.emplace_back(e.family, e.proto, e.address);
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    // A port added on every address of 127/8 is looked up on the dialed
    // 127.x first: a block of one address there (a lost record's: up refuses
    // both on one port) would win, so those blocks are concerned too, and
    // lose the ports added.
    std::set<Proto> everywhere;  // protocols of such ports
    for (const auto& a : add)
        if (a.family == Family::v4 && !a.address) everywhere.insert(a.proto);
    auto concerned = [&](const RewriteEntry& e) {
        return std::binary_search(addresses.begin(), addresses.end(),
                                  std::tuple(e.family, e.proto, e.address)) ||
               (e.family == Family::v4 && e.address && everywhere.contains(e.proto));
    };
    std::vector<Block> touched;
    for (auto& b : blocks_of(map.get()))
        if (concerned(b.entry)) touched.push_back(std::move(b));
    auto gone = remove;
    for (const auto& a : add)
        if (a.family == Family::v4 && !a.address)
            for (const auto& b : touched)
                if (b.entry.address && b.entry.family == Family::v4 && b.entry.proto == a.proto) {
                    RewriteEntry shadowed = a;
                    shadowed.address = b.entry.address;
                    gone.push_back(std::move(shadowed));
                }
    const auto wanted = overlay(uncovered(in_effect(touched), gone, false), add);

    const std::string path = pin_dir_ + "/" + kMap;
    auto failed = [&](const std::string& what) { return Error(what + ": " + errno_text(errno)); };
    using Bytes = std::array<std::uint8_t, sizeof(ServiceKey)>;
    auto bytes = [](const ServiceKey& k) {
        Bytes b;
        std::memcpy(b.data(), &k, sizeof k);
        return b;
    };
    // Largest first, for the deletes: while a block goes, what lies under it
    // is already what is wanted, never a third target.
    std::stable_sort(touched.begin(), touched.end(), [](const Block& a, const Block& b) {
        return a.key.prefixlen < b.key.prefixlen;
    });
    std::map<Bytes, const Block*> had;
    for (const auto& h : touched)
        had[bytes(h.key)] = &h;
    // Written first, so that no port of a run is left unrewritten meanwhile;
    // a block that stays as it is is not written again.
    std::set<Bytes> kept;
    for (const auto& e : wanted) {
        const ServiceTarget target = target_of(e);
        for (const auto& b : port_blocks(e.port, e.last)) {
            const ServiceKey key = key_of(e, b);
            kept.insert(bytes(key));
            const auto it = had.find(bytes(key));
            if (it != had.end() && std::memcmp(&it->second->target, &target, sizeof target) == 0)
                continue;
            if (bpf_map_update_elem(map.get(), &key, &target, BPF_ANY) != 0)
                throw failed("adding " + describe(e) + " to " + path);
        }
    }
    for (const auto& h : touched)
        if (!kept.contains(bytes(h.key)) && bpf_map_delete_elem(map.get(), &h.key) != 0 &&
            errno != ENOENT)
            throw failed("deleting " + describe(h.entry) + " from " + path);
}

std::vector<RewriteEntry> SockRewrite::entries() const {
    UniqueFd map = open_services(true);
    if (!map) return {};
    return in_effect(blocks_of(map.get()));
}

UniqueFd SockRewrite::open_services(bool missing_ok) const {
    const std::string path = pin_dir_ + "/" + kMap;
    UniqueFd map = open_pinned(path, missing_ok);
    if (!map) return map;
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(map.get(), &info, &len) != 0 || info.type != BPF_MAP_TYPE_LPM_TRIE ||
        info.key_size != sizeof(ServiceKey) || info.value_size != sizeof(ServiceTarget))
        throw Error("the service map pinned at " + path +
                    " does not have this portpub's layout (pinned by another version?): remove " +
                    pin_dir_ + ", which detaches its programs, then run portpub restore");
    return map;
}

void SockRewrite::detach() {
    for (const char* name : kLinks)
        if (::unlink((pin_dir_ + "/" + name).c_str()) != 0 && errno != ENOENT)
            throw Error("unpinning " + pin_dir_ + "/" + name + ": " + errno_text(errno));
    for (const char* name : {kMap, kConfig})
        if (::unlink((pin_dir_ + "/" + name).c_str()) != 0 && errno != ENOENT)
            throw Error("unpinning " + pin_dir_ + "/" + name + ": " + errno_text(errno));
    if (::rmdir(pin_dir_.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY)
        throw Error("removing " + pin_dir_ + ": " + errno_text(errno));
}

}  // namespace portpub
