// The nftables table of `portpub forward`, apart from the containers' table
// (inet portpub), through libnftnl + libmnl. apply() makes the whole table
// what the forwards say in one netlink batch (add table, delete table, then
// everything anew), so packets see the old table or the new one, never half.
//
//   table inet portpub_forward {
//     map redirect { type inet_proto . inet_service : inet_service }          to this host
//     map dnat4    { type inet_proto . inet_service : ipv4_addr . inet_service }
//     map dnat6    { type inet_proto . inet_service : ipv6_addr . inet_service }
//     set targets4 { type ipv4_addr . inet_proto . inet_service }             remote targets
//     set targets6 { type ipv6_addr . inet_proto . inet_service }
//     chain forwards {
//       meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat4
//       meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat6
//       redirect to meta l4proto . th dport map @redirect }
//     chain loopback {                          127.0.0.0/8, ::1: local forwards only
//       redirect to meta l4proto . th dport map @redirect }
//     chain prerouting { type nat hook prerouting priority dstnat - 1
//       ip daddr 127.0.0.0/8 return; ip6 daddr ::1 return     (CVE-2020-8558)
//       fib daddr type local jump forwards }                    no interface match
//     chain output { type nat hook output priority dstnat - 1
//       ip daddr 127.0.0.0/8 goto loopback; ip6 daddr ::1 goto loopback
//       fib daddr type local jump forwards }
//     chain postrouting { type nat hook postrouting priority srcnat
//       ct status dnat ip daddr . meta l4proto . th dport @targets4 masquerade
//       ct status dnat ip6 daddr . meta l4proto . th dport @targets6 masquerade }
//   }
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "portpub/forward_plan.hpp"

struct mnl_socket;

namespace portpub {

inline constexpr const char* kForwardTable = "portpub_forward";

class ForwardFirewall {
  public:
    ForwardFirewall();  // throws Error when the kernel has no nftables
    ~ForwardFirewall();
    ForwardFirewall(const ForwardFirewall&) = delete;
    ForwardFirewall& operator=(const ForwardFirewall&) = delete;

    // Replaces the table by one holding exactly `elements`; with none, removes it.
    void apply(const std::vector<ForwardElement>& elements);
    bool table_exists();
    // The keys of one map or set; empty when the table is missing.
    std::set<std::vector<std::uint8_t>> keys(ForwardSet set);

  private:
    mnl_socket* nl_ = nullptr;
    std::uint32_t seq_;
};

}  // namespace portpub
