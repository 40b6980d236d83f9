// The firewalls beside portpub, read and changed for its bridges' traffic.
//
// Reading lists every chain of every nftables table, keeps the base chains on
// the forward hook outside portpub's own tables, and reads each one's policy
// and rules: a rule that accepts an interface by name alone (meta iifname or
// oifname, a compare, a counter, accept) and a last rule that drops or
// rejects whatever reaches it are all that is kept. iptables-legacy and
// firewalld are read through their own files.
//
// Changing: portpub's rules go at the top of iptables-nft's `filter FORWARD`,
// made of the expressions iptables-nft itself writes (meta, cmp of the name
// with its NUL, counter, accept or jump) and a comment in the rule's user
// data, so that `iptables -L`, `iptables-save` and `iptables-restore` go on
// working:
//   -A FORWARD -i portpub0 -m comment --comment "portpub portpub0" -j PORTPUB
//   -A FORWARD -o portpub0 -m comment --comment "portpub portpub0" -j ACCEPT
//   -A PORTPUB -o docker+ -m comment --comment portpub -j RETURN   (and br-+, virbr+, ...)
//   -A PORTPUB -m comment --comment portpub -j ACCEPT
// Into the bridge, everything: portpub's own isolation chain drops what is not
// published. Out of it, everything but what leaves through another container
// or VM program's bridge, which that program's rules decide (Docker keeps its
// unpublished ports closed). They are found again by comment and shape. Where
// iptables has not made its table or chain yet, portpub makes them as it would
// (a filter chain on the forward hook at priority 0, accepting by default), so
// that a drop policy set later finds the rules already in place. What is
// deleted on the strength of a look (portpub's chain and table, when empty) is
// deleted in a batch bound to the ruleset's generation at that look.
#include "portpub/foreign_firewalls.hpp"

#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "firewalld.hpp"
#include "iptables_legacy.hpp"
#include "nft_netlink.hpp"
#include "portpub/error.hpp"
#include "portpub/firewall.hpp"
#include "portpub/forward_firewall.hpp"

namespace portpub {

namespace {

constexpr const char* kFilter = "filter";
constexpr const char* kForward = "FORWARD";
constexpr const char* kChain = "PORTPUB";  // where traffic out of portpub's bridges goes
// The bridges of other programs that hold containers or VMs: Docker's default
// and user networks, libvirt, LXC, LXD, Podman, CNI.
constexpr const char* kOtherBridges[] = {"docker", "br-",    "virbr", "lxcbr",
                                         "lxdbr",  "podman", "cni"};

// Whether `iptables` is iptables-nft: Debian's alternatives lead it to
// xtables-nft-multi (to xtables-legacy-multi for iptables-legacy).
bool iptables_is_nft() {
    for (const char* path : {"/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"}) {
        std::error_code ec;
        const auto target = std::filesystem::canonical(path, ec);
        if (!ec) return target.filename() == "xtables-nft-multi";
    }
    return false;
}

std::uint32_t family_of(bool ipv6) {
    return ipv6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
}

// What one rule does, as far as interfaces go.
struct RuleFacts {
    std::optional<std::string> accepts_in, accepts_out;  // "name", or "name+" for a prefix
    std::string drops;                                   // "drop" or "reject" for any packet
    std::string comment;
    std::uint64_t handle = 0;
    bool portpub_jump = false;  // its verdict is a jump to portpub's chain
};

std::string comment_of(const nftnl_rule* r) {
    std::uint32_t len = 0;
    const void* ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    std::string comment;
    if (!ud) return comment;
    nftnl_udata_parse(
        ud, len,
        [](const nftnl_udata* attr, void* out) -> int {
            if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT && nftnl_udata_len(attr) > 0)
                static_cast<std::string*>(out)->assign(
                    static_cast<const char*>(nftnl_udata_get(attr)),
                    ::strnlen(static_cast<const char*>(nftnl_udata_get(attr)),
                              nftnl_udata_len(attr)));
            return 0;
        },
        &comment);
    return comment;
}

RuleFacts facts_of(const nftnl_rule* r) {
    RuleFacts f;
    f.comment = comment_of(r);
    f.handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
    // The expressions, in order; anything but these makes the rule conditional
    // in a way portpub does not read, and it counts for nothing.
    std::optional<std::uint32_t> meta_key;
    std::optional<std::string> name;
    bool conditional = false, other = false;
    std::optional<std::uint32_t> verdict;
    bool reject = false;
    auto* it = nftnl_expr_iter_create(r);
    if (!it) throw Error("out of memory");
    for (auto* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
        const std::string kind = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
        if (kind == "counter" || kind == "log") continue;
        if (kind == "meta" && !meta_key && nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG)) {
            meta_key = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY);
            conditional = true;
            continue;
        }
        if (kind == "cmp" && meta_key && !name &&
            nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) == NFT_CMP_EQ) {
            std::uint32_t len = 0;
            const auto* data =
                static_cast<const char*>(nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len));
            const std::size_t n = ::strnlen(data, len);
            // Without its NUL, the compare matches every name it begins.
            name = std::string(data, n) + (n == len ? "+" : "");
            continue;
        }
        if (kind == "immediate" && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
            verdict = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
            if (static_cast<int>(*verdict) == NFT_JUMP &&
                nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
                f.portpub_jump =
                    std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN), kChain) == 0;
            continue;
        }
        // iptables-nft's own `-m comment` (what iptables-restore writes back):
        // xt_comment_info, the text and its NUL.
        if (kind == "match" &&
            std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME), "comment") == 0) {
            std::uint32_t len = 0;
            const auto* info =
                static_cast<const char*>(nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len));
            if (info && f.comment.empty()) f.comment.assign(info, ::strnlen(info, len));
            continue;
        }
        if (kind == "reject" ||
            (kind == "target" &&
             std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME), "REJECT") == 0)) {
            reject = true;
            continue;
        }
        other = true;
        conditional = true;
    }
    nftnl_expr_iter_destroy(it);
    // A jump to portpub's chain accepts, but for other programs' bridges.
    if (!other && meta_key && name &&
        (verdict == static_cast<std::uint32_t>(NF_ACCEPT) || f.portpub_jump)) {
        if (*meta_key == NFT_META_IIFNAME) f.accepts_in = name;
        if (*meta_key == NFT_META_OIFNAME) f.accepts_out = name;
    }
    if (!conditional) {
        if (reject)
            f.drops = "reject";
        else if (verdict == static_cast<std::uint32_t>(NF_DROP))
            f.drops = "drop";
    }
    return f;
}

// -i BRIDGE -j PORTPUB, or -o BRIDGE -j ACCEPT.
nft::Rule forward_rule(bool ipv6, const std::string& bridge, bool in) {
    nft::Rule r(kFilter, kForward, family_of(ipv6));
    r.meta(in ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1)
        .cmp(NFT_REG_1, NFT_CMP_EQ, bridge.c_str(), static_cast<std::uint32_t>(bridge.size() + 1))
        .counter();
    if (in)
        r.verdict(NFT_JUMP, kChain);
    else
        r.verdict(NF_ACCEPT);
    r.comment(iptables_comment(bridge));
    return r;
}

// Whether `r` is one of the two rules portpub puts in FORWARD for `bridge`.
bool is_forward_rule(const RuleFacts& r, const std::string& bridge) {
    return r.comment == iptables_comment(bridge) && ((r.portpub_jump && r.accepts_in == bridge) ||
                                                     (!r.portpub_jump && r.accepts_out == bridge));
}

// PORTPUB's rules: back to FORWARD for other programs' bridges, else accept.
void fill_portpub_chain(nft::Batch& batch, bool ipv6) {
    const std::string comment = "portpub";
    for (const char* prefix : kOtherBridges) {
        nft::Rule r(kFilter, kChain, family_of(ipv6));
        // A prefix: the name without its NUL, as iptables writes `-o docker+`.
        r.meta(NFT_META_OIFNAME, NFT_REG_1)
            .cmp(NFT_REG_1, NFT_CMP_EQ, prefix, static_cast<std::uint32_t>(std::strlen(prefix)))
            .counter()
            .verdict(NFT_RETURN)
            .comment(comment);
        nft::append_rule(batch, r);
    }
    nft::Rule accept(kFilter, kChain, family_of(ipv6));
    accept.counter().verdict(NF_ACCEPT).comment(comment);
    nft::append_rule(batch, accept);
}

}  // namespace

struct KernelForeignFirewalls::Impl {
    mnl_socket* nl = nullptr;
    std::uint32_t seq = 0;
    FirewalldBus firewalld;

    ~Impl() {
        if (nl) nft::close_socket(nl);
    }
    mnl_socket* socket() {
        if (!nl) {
            nl = nft::open_socket();
            seq = static_cast<std::uint32_t>(::time(nullptr));
        }
        return nl;
    }

    // What iptables' filter table of one family holds, as far as portpub's
    // changes go, at one generation of the ruleset.
    struct Look {
        std::uint32_t generation = 0;
        bool table = false, forward = false, forward_drop = false, portpub_chain = false;
        std::size_t chains = 0;
    };
    Look look(bool ipv6) {
        Look l;
        l.generation = nft::generation(socket(), seq);
        l.table = nft::table_comment(socket(), seq, kFilter, family_of(ipv6)).has_value();
        nft::for_each_chain(
            socket(), seq,
            [&](const nftnl_chain* c) {
                if (nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) != family_of(ipv6) ||
                    std::strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), kFilter) != 0)
                    return;
                ++l.chains;
                const char* name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
                if (std::strcmp(name, kChain) == 0) l.portpub_chain = true;
                if (std::strcmp(name, kForward) != 0) return;
                l.forward = true;
                l.forward_drop = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
                                 nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP;
            },
            kFilter, family_of(ipv6));  // only iptables' table: a short look
        return l;
    }
    std::vector<RuleFacts> forward_rules(bool ipv6) {
        std::vector<RuleFacts> rules;
        nft::for_each_rule(socket(), seq, family_of(ipv6), kFilter, kForward,
                           [&](const nftnl_rule* r) { rules.push_back(facts_of(r)); });
        return rules;
    }
    // Sends `batch`; false when the ruleset changed since its look (ERESTART),
    // someone made what it makes (EEXIST), deleted what it deletes (ENOENT),
    // or a chain it deletes is in use (EBUSY): to be looked at and tried again. A host whose
    // ruleset changes all the time (kube-proxy) gets many tries; each look is short.
    bool send_or_retry(nft::Batch& batch, int attempt, bool ipv6) {
        try {
            send(batch, ipv6);
            return true;
        } catch (const std::system_error& e) {
            const int err = e.code().value();
            if ((err == ERESTART || err == EEXIST || err == EBUSY || err == ENOENT) && attempt < 50)
                return false;
            throw Error(e.what());
        }
    }
    void send(nft::Batch& batch, bool ipv6) {
        nft::send(socket(), batch,
                  std::string("look at `") + (ipv6 ? "ip6tables" : "iptables") +
                      " -S FORWARD`, then run the command again");
    }
};

KernelForeignFirewalls::KernelForeignFirewalls() : impl_(std::make_unique<Impl>()) {}
KernelForeignFirewalls::~KernelForeignFirewalls() = default;

ForeignFirewalls KernelForeignFirewalls::read(const std::vector<std::string>& bridges) {
    ForeignFirewalls fw;
    // Base chains on the forward hook, and every chain's name by table.
    struct Base {
        std::uint32_t family;
        std::string table, chain;
        bool policy_drop;
    };
    std::vector<Base> bases;
    std::map<std::pair<std::uint32_t, std::string>, std::vector<std::string>> names;
    nft::for_each_chain(impl_->socket(), impl_->seq, [&](const nftnl_chain* c) {
        const std::uint32_t family = nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY);
        const std::string table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
        const std::string name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
        names[{family, table}].push_back(name);
        if (family != NFPROTO_IPV4 && family != NFPROTO_IPV6 && family != NFPROTO_INET) return;
        if (family == NFPROTO_INET && (table == kTableName || table == kForwardTable)) return;
        if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
            nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) != NF_INET_FORWARD)
            return;
        bases.push_back({family, table, name,
                         nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
                             nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP});
    });
    for (const auto& b : bases) {
        ForwardChain c;
        c.family = nft::family_name(b.family);
        c.table = b.table;
        c.chain = b.chain;
        c.kind = b.family != NFPROTO_INET && b.table == kFilter && b.chain == kForward
                     ? ForwardChain::Kind::iptables_nft
                     : ForwardChain::Kind::nftables;
        c.policy_drop = b.policy_drop;
        for (const auto& n : names[{b.family, b.table}])
            if (n != b.chain) c.table_chains.push_back(n);
        bool last_drops = false;
        nft::for_each_rule(impl_->socket(), impl_->seq, b.family, b.table.c_str(), b.chain.c_str(),
                           [&](const nftnl_rule* r) {
                               const auto f = facts_of(r);
                               if (f.accepts_in) c.accepts_in.insert(*f.accepts_in);
                               if (f.accepts_out) c.accepts_out.insert(*f.accepts_out);
                               last_drops = !f.drops.empty();
                               c.final_drop = f.drops;
                           });
        if (!last_drops) c.final_drop.clear();
        fw.chains.push_back(std::move(c));
    }
    for (auto& c : legacy_forward_chains())
        fw.chains.push_back(std::move(c));
    fw.iptables_nft_installed = iptables_is_nft();
    auto& firewalld = impl_->firewalld;
    if (firewalld.running()) {
        fw.firewalld.running = true;
        fw.firewalld.strict_forward_ports = firewalld.strict_forward_ports();
        for (const auto& b : bridges)
            fw.firewalld.zone_of[b] = firewalld.zone_of(b);
    }
    return fw;
}

HostState::FilterMade KernelForeignFirewalls::add_iptables_accepts(bool ipv6,
                                                                   const std::string& bridge) {
    for (int attempt = 1;; ++attempt) {
        const auto look = impl_->look(ipv6);
        HostState::FilterMade made{!look.table, !look.forward};
        bool in = false, out = false;
        if (look.forward)
            for (const auto& r : impl_->forward_rules(ipv6))
                if (is_forward_rule(r, bridge)) {
                    in = in || (r.portpub_jump && r.accepts_in == bridge);
                    out = out || r.accepts_out == bridge;
                }
        if (in && out) return made;
        // Made only where missing, each with NLM_F_EXCL: a chain made meanwhile
        // fails the batch (EEXIST) instead of having its policy set to accept.
        nft::Batch batch(impl_->seq, kFilter, family_of(ipv6));
        if (made.table) nft::add_table(batch, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
        if (made.chain) {
            const nft::ChainDef forward{kForward, "filter", NF_INET_FORWARD, 0};
            nft::add_chains(batch, std::span(&forward, 1), NLM_F_CREATE | NLM_F_EXCL);
        }
        if (!look.portpub_chain) {
            const nft::ChainDef chain{kChain, "filter", std::nullopt, 0};
            nft::add_chains(batch, std::span(&chain, 1), NLM_F_CREATE | NLM_F_EXCL);
            fill_portpub_chain(batch, ipv6);
        }
        // Each goes to the top: the one for traffic into the bridge first, so
        // that the chain reads -i, then -o.
        if (!out) nft::insert_rule(batch, forward_rule(ipv6, bridge, false));
        if (!in) nft::insert_rule(batch, forward_rule(ipv6, bridge, true));
        if (impl_->send_or_retry(batch, attempt, ipv6)) return made;
    }
}

void KernelForeignFirewalls::remove_iptables_accepts(bool ipv6, const std::string& bridge) {
    for (int attempt = 1;; ++attempt) {
        const auto look = impl_->look(ipv6);
        if (!look.forward) return;
        // Rules by handle: one deleted meanwhile fails the batch (ENOENT), and
        // the next look finds it gone.
        nft::Batch batch(impl_->seq, kFilter, family_of(ipv6));
        bool jumps_left = false;
        for (const auto& r : impl_->forward_rules(ipv6)) {
            if (is_forward_rule(r, bridge))
                nft::delete_rule(batch, kForward, r.handle);
            else if (r.portpub_jump)
                jumps_left = true;
        }
        // The chain goes with the last bridge that sends traffic there; the
        // kernel refuses (EBUSY) while anything still jumps to it.
        if (look.portpub_chain && !jumps_left) {
            nft::flush_chain(batch, kChain);
            nft::delete_chain(batch, kChain);
        }
        if (batch.messages() == 0) return;
        if (impl_->send_or_retry(batch, attempt, ipv6)) return;
    }
}

void KernelForeignFirewalls::remove_made(bool ipv6, HostState::FilterMade made) {
    for (int attempt = 1;; ++attempt) {
        const auto look = impl_->look(ipv6);
        nft::Batch batch(impl_->seq, kFilter, family_of(ipv6), look.generation);
        std::size_t chains = look.chains;
        // Only what holds nothing of anyone's, as iptables would have made it.
        if (made.chain && look.forward && !look.forward_drop &&
            impl_->forward_rules(ipv6).empty()) {
            nft::delete_chain(batch, kForward);
            --chains;
        }
        // Deleting a table deletes all it holds: only an empty one, and only
        // at the generation looked at.
        if (made.table && look.table && chains == 0) nft::add_table(batch, NFT_MSG_DELTABLE, 0);
        if (batch.messages() == 0) return;
        if (impl_->send_or_retry(batch, attempt, ipv6)) return;
    }
}

std::set<std::string> KernelForeignFirewalls::bridges_with_accepts(bool ipv6) {
    std::set<std::string> bridges;
    const std::string prefix = iptables_comment("");
    if (!impl_->look(ipv6).forward) return bridges;
    for (const auto& r : impl_->forward_rules(ipv6)) {
        if (r.comment.rfind(prefix, 0) != 0) continue;
        const auto name = r.comment.substr(prefix.size());
        // portpub's shape, not a user's rule that happens to say "portpub ...".
        if (is_forward_rule(r, name)) bridges.insert(name);
    }
    return bridges;
}

void KernelForeignFirewalls::bind_zone(const std::string& zone, const std::string& bridge) {
    impl_->firewalld.add_interface(zone, bridge);
}

void KernelForeignFirewalls::unbind_zone(const std::string& zone, const std::string& bridge) {
    if (!impl_->firewalld.running()) return;  // stopped: its bindings went with it
    impl_->firewalld.remove_interface(zone, bridge);
}

}  // namespace portpub
