// The nftables table of portpub, through libnftnl + libmnl. Every change is
// one netlink batch: the kernel applies all of it or none of it. Rules never
// change with the ports published: `up` and `down` add and remove elements.
//
//   table inet portpub {
//     map pub4       { type inet_proto . inet_service : ipv4_addr . inet_service }
//     map pub4addr   { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//     map proxy4     { type inet_proto . inet_service : inet_service; flags interval }
//     map proxy4addr { type ipv4_addr . inet_proto . inet_service : inet_service; flags interval }
//     map proxy6     { type inet_proto . inet_service : inet_service; flags interval }
//     map proxy6addr { type ipv6_addr . inet_proto . inet_service : inet_service; flags interval }
//     map pub6       { type inet_proto . inet_service : ipv6_addr . inet_service }
//     map pub6addr   { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service }
//     set nets4      { type ipv4_addr; flags interval }        container subnets
//     set nets6      { type ipv6_addr; flags interval }        their IPv6 subnets
//     set bridges    { type ifname }                           their bridges
//     set isolated4  { type ipv4_addr . ifname; flags interval }
//                    subnet . bridge of each network portpub made (not of another
//                    CNI plugin's network, which portpub only publishes into)
//     set isolated6  { type ipv6_addr . ifname; flags interval }
//     chain publish {
//       meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @pub4addr
//       meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4
//       meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6addr
//       meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6
//       meta l4proto tcp meta nfproto ipv6 redirect to ... map @proxy6addr, then @proxy6
//                                                  (IPv6 clients of IPv4-only containers)
//     }
//     chain loopback {                                         127.0.0.0/8, ::1: the proxy
//       meta l4proto tcp meta nfproto ipv4 redirect to ... map @proxy4addr, then @proxy4
//       (the same for ipv6 with @proxy6addr and @proxy6)
//     }
//     chain isolation {                                        to a container of isolated4
//       ct state established,related accept                   replies
//       ct status dnat accept                                  published ports
//       meta nfproto ipv4 ip daddr . iifname @isolated4 accept its own network (br_netfilter)
//       meta nfproto ipv6 ip6 daddr . iifname @isolated6 accept
//       drop                                                   the rest: other networks, hosts
//     }
//     chain prerouting  { type nat hook prerouting priority dstnat
//       meta nfproto ipv4 ip daddr 127.0.0.0/8 return          (never DNAT loopback:
//       meta nfproto ipv6 ip6 daddr ::1 return                  CVE-2020-8558)
//       fib daddr type local jump publish }
//     chain output      { type nat hook output priority dstnat
//       meta nfproto ipv4 ip daddr 127.0.0.0/8 goto loopback   (never route_localnet)
//       meta nfproto ipv6 ip6 daddr ::1 goto loopback
//       fib daddr type local jump publish }
//     chain postrouting { type nat hook postrouting priority srcnat
//       meta nfproto ipv4 ct status dnat ip saddr @nets4 ip daddr @nets4 masquerade   (hairpin)
//       meta nfproto ipv4 ip saddr @nets4 oifname != @bridges masquerade              (outbound)
//       (the same two for ipv6 with @nets6) }
//     chain forward     { type filter hook forward priority filter; policy accept
//       meta nfproto ipv4 ip daddr . oifname @isolated4 goto isolation
//       meta nfproto ipv6 ip6 daddr . oifname @isolated6 goto isolation }
//   }
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "portpub/firewall.hpp"
#include "portpub/firewall_change.hpp"

struct mnl_socket;

namespace portpub {

// What `up` installs, as text, with no socket opened: each set's flags, key
// and data types, each chain's type, hook and priority, and the rules of
// each chain as libnftnl prints them (nft_firewall_test.cpp compares it with
// a file kept in the repository; libnftnl 1.2's printing, on a little-endian
// machine).
std::string base_rules_text();

class NftFirewall final : public FirewallCommand, public FirewallView {
  public:
    // `owner`: the state directory whose records this table serves; it is
    // kept as the table's comment, and a table of another directory is left
    // alone. Throws Error when the kernel has no nftables (no nfnetlink).
    explicit NftFirewall(std::string owner);
    ~NftFirewall() override;
    NftFirewall(const NftFirewall&) = delete;
    NftFirewall& operator=(const NftFirewall&) = delete;

    // Applies the change in one batch. Deleting what is already gone is not an
    // error: `down` must work after a ruleset flush.
    void apply(const FirewallChange& change) override;

    // Throws Error when the table serves another state directory's records.
    void check_owner() override;

    bool table_exists() override { return table_comment().has_value(); }
    // The table's comment ("" when it has none); nullopt when there is no table.
    std::optional<std::string> table_comment();
    // Rules per chain of the table; empty when there is no table.
    std::map<std::string, std::size_t> rule_counts();
    // Keys of the elements of a set or map; empty when the set does not exist.
    std::set<std::vector<std::uint8_t>> element_keys(const std::string& set);
    // For each of `elements`, in order: whether its map holds its key. Each
    // map is read once.
    std::vector<bool> in_kernel(const std::vector<NatElement>& elements) override;
    // Every element of one map, as the kernel holds it.
    std::vector<NatElement> elements(NatMap map) override;
    // Whether the sets hold the network's subnet and bridge, and, with
    // `isolated`, whether the network is closed to the outside.
    bool network_present(const Network& net, bool isolated) override;
    // How the table's chains differ from what portpub installs: "chain
    // prerouting is missing", "chain output has 1 rule, not 4". Empty when
    // they match (or when there is no table at all: see table_exists()).
    std::vector<std::string> base_differences() override;

  private:
    void commit(const FirewallChange& change);
    [[noreturn]] void explain_existing(const std::vector<NatElement>& added,
                                       const std::string& fallback);
    std::string comment() const { return "portpub records: " + owner_; }

    mnl_socket* nl_ = nullptr;
    std::uint32_t seq_;
    std::string owner_;
};

}  // namespace portpub
