// The nftables netlink plumbing of portpub's tables (inet portpub and inet
// portpub_forward), through libnftnl + libmnl: rules built expression by
// expression, batches sent as one transaction, and the queries that read a
// table back. Internal to the shell: nft_firewall.cpp and forward_firewall.cpp
// say what goes into their tables, this says how it gets there.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

struct mnl_socket;
struct nlmsghdr;
struct nftnl_batch;
struct nftnl_chain;
struct nftnl_expr;
struct nftnl_rule;
struct nftnl_set;
struct nftnl_set_elem;
struct nftnl_table;

namespace portpub::nft {

inline constexpr std::uint32_t kInet = 1;  // NFPROTO_INET, without the kernel header here

// The nft tool's name of a table family ("inet", "ip", "ip6"...).
const char* family_name(std::uint32_t nfproto);

// Deleters of the libnftnl objects, for std::unique_ptr.
struct TableFree {
    void operator()(nftnl_table* t) const;
};
struct ChainFree {
    void operator()(nftnl_chain* c) const;
};
struct SetFree {
    void operator()(nftnl_set* s) const;
};
struct RuleFree {
    void operator()(nftnl_rule* r) const;
};
using TablePtr = std::unique_ptr<nftnl_table, TableFree>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainFree>;
using SetPtr = std::unique_ptr<nftnl_set, SetFree>;
using RulePtr = std::unique_ptr<nftnl_rule, RuleFree>;

// A netfilter netlink socket that acks every message without echoing the
// request and explains errors when the kernel can. Throws Error when the
// kernel has no nftables; close it with close_socket().
mnl_socket* open_socket();
void close_socket(mnl_socket* nl);

// What to add to an error when `err` says nftables is missing or not allowed.
std::string no_nftables_hint(int err);

// A rule of an inet table as a chain of expressions, built in the order the
// kernel runs them. Registers are NFT_REG_* and NFT_REG32_* values.
class Rule {
  public:
    // `nfproto`: the table's family (NFPROTO_INET for portpub's own tables,
    // NFPROTO_IPV4 or NFPROTO_IPV6 for iptables-nft's).
    Rule(const char* table, const char* chain, std::uint32_t nfproto = kInet);

    Rule& ipv4_only();
    Rule& ipv6_only();
    Rule& family(std::uint8_t nfproto);  // meta nfproto
    Rule& tcp_only();
    Rule& meta(std::uint32_t key, std::uint32_t dreg);
    Rule& cmp(std::uint32_t sreg, std::uint32_t op, const void* data, std::uint32_t len);
    Rule& payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg);
    Rule& ip_saddr(std::uint32_t dreg);
    Rule& ip6_saddr(std::uint32_t dreg);
    Rule& ip_daddr(std::uint32_t dreg);
    Rule& ip6_daddr(std::uint32_t dreg);
    Rule& th_dport(std::uint32_t dreg);
    // meta l4proto . th dport, in the 32-bit registers `reg` and `reg + 1`.
    Rule& proto_port(std::uint32_t reg);
    // ip daddr 127.0.0.0/8 (v4), or ip6 daddr ::1, with its family match.
    Rule& loopback_daddr(bool v4, std::uint32_t reg);
    Rule& lookup(std::uint32_t sreg, const char* set, std::optional<std::uint32_t> dreg = {},
                 std::uint32_t flags = 0);
    Rule& dnat4(std::uint32_t reg_addr, std::uint32_t reg_port);
    Rule& dnat6(std::uint32_t reg_addr, std::uint32_t reg_port);
    Rule& dnat(std::uint32_t nfproto, std::uint32_t reg_addr, std::uint32_t reg_port);
    Rule& masquerade();
    // redirect to :port, the port taken from a register (a map lookup).
    Rule& redirect(std::uint32_t reg_port);
    Rule& fib_daddr_type(std::uint32_t dreg);
    // fib daddr type local: traffic to any address of this host.
    Rule& fib_daddr_local(std::uint32_t reg);
    Rule& ct_status_dnat(std::uint32_t reg);
    // ct state established,related
    Rule& ct_state_established_or_related(std::uint32_t reg);
    // The conntrack field `key` has one of the bits of `mask` set.
    Rule& ct_any(std::uint32_t key, std::uint32_t mask, std::uint32_t reg);
    Rule& verdict(int code, const char* chain = nullptr);
    // A comment, kept in the rule's user data where iptables-nft and nft
    // read it (`-m comment --comment TEXT`, `comment "TEXT"`).
    Rule& comment(const std::string& text);
    Rule& counter();

    nftnl_rule* get() const { return r_.get(); }
    const char* chain() const;

  private:
    Rule& add(nftnl_expr* e);
    RulePtr r_;
};

// One set or map element as raw bytes: key, optional data, flags, and the
// key's end for intervals of concatenations.
struct RawElement {
    std::vector<std::uint8_t> key;
    std::vector<std::uint8_t> data;
    std::uint32_t flags = 0;
    std::vector<std::uint8_t> key_end;
};

// A batch of nftables messages for one table (of family inet unless said
// otherwise), with a description of each for error messages.
class Batch {
  public:
    // With `generation`, the kernel applies the batch only while the ruleset
    // is still at that generation, and fails it with ERESTART otherwise: a
    // change decided on what was read is not made on what someone changed since.
    Batch(std::uint32_t& seq, const char* table, std::uint32_t nfproto = kInet,
          std::optional<std::uint32_t> generation = std::nullopt);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // The header of the next message, which end() closes.
    nlmsghdr* begin(std::uint16_t type, std::uint16_t flags, std::string what);
    void end();

    // `verb` elements of `set`, in messages of at most kElementsPerMessage;
    // each is described "<verb> <n> element(s) <preposition> set <set>".
    void elements(std::uint16_t type, std::uint16_t flags, const char* set,
                  std::span<const RawElement> elems, const std::string& verb,
                  const std::string& preposition = "of");

    void finish();
    std::size_t messages() const { return described_.size(); }
    const std::string& what(std::uint32_t seq) const;
    const char* table() const { return table_; }
    std::uint32_t family() const { return family_; }
    // "table inet portpub", for messages.
    std::string table_text() const;
    nftnl_batch* get() const { return b_; }

  private:
    std::uint32_t& seq_;
    const char* table_;
    std::uint32_t family_;
    nftnl_batch* b_;
    std::uint32_t first_seq_ = 0;
    std::vector<std::string> described_;
};

// Sends the whole batch in one sendmsg, so that the kernel takes it as one
// transaction, and reads every ack. A failed message throws std::system_error
// ("<what> in table inet <table> failed: ..."), with the kernel's errno as its
// code; a batch whose acks do not all come throws Error, its text ending in
// `unknown_outcome_advice` (what to check, and to retry).
void send(mnl_socket* nl, Batch& batch, const std::string& unknown_outcome_advice);

// nftables data type ids (as the nft tool numbers them), so that `nft list`
// shows the maps with their real types; concat() joins them as nft does for
// a concatenation.
inline constexpr std::uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeProto = 12, kTypeService = 13,
                               kTypeIfname = 41;
constexpr std::uint32_t concat(std::uint32_t a, std::uint32_t b) {
    return a << 6 | b;
}

// nft's byte order names, kept in a set's user data so that `nft list` can
// print a key it cannot infer, such as an interface name.
inline constexpr std::uint32_t kHostEndian = 1, kBigEndian = 2;

struct SetDef {
    const char* name;
    std::uint32_t flags, key_type, key_len, data_type, data_len;
    std::uint32_t key_byteorder;
    std::array<std::uint8_t, 4> fields{};  // interval concatenations: each field's length
};
struct ChainDef {
    const char* name;
    const char* type;  // base chains: "nat" or "filter"
    std::optional<std::uint32_t> hook;
    int priority;
};

// Creating (NFT_MSG_NEWTABLE, with `comment` when not empty) or deleting
// (NFT_MSG_DELTABLE) the batch's table.
void add_table(Batch& batch, std::uint16_t type, std::uint16_t flags,
               const std::string& comment = {});
// Creates the sets, numbered in order from 1 within the batch.
void add_sets(Batch& batch, std::span<const SetDef> sets);
// NLM_F_CREATE | NLM_F_EXCL in `flags` fails on a chain that exists, where
// NLM_F_CREATE alone would update it (its policy too).
void add_chains(Batch& batch, std::span<const ChainDef> chains,
                std::uint16_t flags = 0x400 /* NLM_F_CREATE */);
void flush_chain(Batch& batch, const std::string& chain);
void append_rule(Batch& batch, const Rule& rule);
// The rule at the top of its chain, before every rule there.
void insert_rule(Batch& batch, const Rule& rule);
void delete_rule(Batch& batch, const std::string& chain, std::uint64_t handle);
void delete_chain(Batch& batch, const std::string& chain);

// Sends one request and reads the reply, handing each message to
// `on_message`; false when the kernel says the object does not exist.
bool query(mnl_socket* nl, const nlmsghdr* request, int (*on_message)(const nlmsghdr*, void*),
           void* data, const std::string& what);

// The table's comment ("" when it has none); nullopt when there is no table.
std::optional<std::string> table_comment(mnl_socket* nl, std::uint32_t& seq, const char* table,
                                         std::uint32_t nfproto = kInet);
// Rules per chain of the table; empty when there is no table.
std::map<std::string, std::size_t> rule_counts(mnl_socket* nl, std::uint32_t& seq,
                                               const char* table);
// The ruleset's generation: it changes with every change of anyone's.
std::uint32_t generation(mnl_socket* nl, std::uint32_t& seq);

// Every chain of every table, of all families, as the kernel lists them; with
// `table`, only the chains of that table of family `nfproto`.
void for_each_chain(mnl_socket* nl, std::uint32_t& seq,
                    const std::function<void(const nftnl_chain*)>& visit,
                    const char* table = nullptr, std::uint32_t nfproto = 0);
// The rules of one chain, in order; nothing when the chain does not exist.
void for_each_rule(mnl_socket* nl, std::uint32_t& seq, std::uint32_t nfproto, const char* table,
                   const char* chain, const std::function<void(const nftnl_rule*)>& visit);

// Hands each element of a set or map to `visit`; none when it does not exist.
void for_each_element(mnl_socket* nl, std::uint32_t& seq, const char* table, const std::string& set,
                      const std::function<void(nftnl_set_elem*)>& visit);
// Keys of the elements of a set or map; empty when the set does not exist.
std::set<std::vector<std::uint8_t>> element_keys(mnl_socket* nl, std::uint32_t& seq,
                                                 const char* table, const std::string& set);

}  // namespace portpub::nft
