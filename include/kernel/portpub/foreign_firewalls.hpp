// The firewalls beside portpub, read and, where portpub may, changed for the
// traffic of its bridges: iptables-nft's `filter FORWARD` (accepts at its
// top, made only of expressions iptables-nft reads back), firewalld (a zone
// binding at runtime, over D-Bus), and read only: other nftables tables'
// forward chains and iptables-legacy. KernelForeignFirewalls is the real one;
// the publisher is handed the interface, so a test can hand it a fake.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "portpub/foreign_drops.hpp"
#include "portpub/host_state.hpp"

namespace portpub {

class ForeignFirewallCommands {
  public:
    virtual ~ForeignFirewallCommands() = default;
    // Every forward chain outside portpub's tables, and firewalld with the
    // zones of `bridges`.
    virtual ForeignFirewalls read(const std::vector<std::string>& bridges) = 0;

    // Accepts for the traffic into and out of `bridge` at the top of
    // iptables-nft's filter FORWARD (ip6tables' with `ipv6`); its table and
    // chain are made as iptables makes them when they are missing. Returns
    // what it made. Accepts already there are not added twice.
    virtual HostState::FilterMade add_iptables_accepts(bool ipv6, const std::string& bridge) = 0;
    // portpub's accepts for `bridge`, wherever they are in that chain;
    // nothing when they are gone.
    virtual void remove_iptables_accepts(bool ipv6, const std::string& bridge) = 0;
    // Deletes what portpub made, when it holds nothing of anyone's: the chain
    // when it has no rule and accepts by default, the table when it has no chain.
    virtual void remove_made(bool ipv6, HostState::FilterMade made) = 0;
    // The bridges whose accepts (by their comment) are in that chain.
    virtual std::set<std::string> bridges_with_accepts(bool ipv6) = 0;

    // firewalld: binds `bridge` to `zone` at runtime (never permanently), and
    // takes it out again; taking out what is not bound is not an error.
    virtual void bind_zone(const std::string& zone, const std::string& bridge) = 0;
    virtual void unbind_zone(const std::string& zone, const std::string& bridge) = 0;
};

class KernelForeignFirewalls final : public ForeignFirewallCommands {
  public:
    KernelForeignFirewalls();
    ~KernelForeignFirewalls() override;

    ForeignFirewalls read(const std::vector<std::string>& bridges) override;
    HostState::FilterMade add_iptables_accepts(bool ipv6, const std::string& bridge) override;
    void remove_iptables_accepts(bool ipv6, const std::string& bridge) override;
    void remove_made(bool ipv6, HostState::FilterMade made) override;
    std::set<std::string> bridges_with_accepts(bool ipv6) override;
    void bind_zone(const std::string& zone, const std::string& bridge) override;
    void unbind_zone(const std::string& zone, const std::string& bridge) override;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;  // the netlink socket and the bus, opened on first use
};

}  // namespace portpub
