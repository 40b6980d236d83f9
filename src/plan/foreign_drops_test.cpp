#include "portpub/foreign_drops.hpp"

#include <catch2/catch.hpp>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

Network network(bool ipv6 = false) {
    Network n;
    n.bridge = "portpub0";
    n.subnet = *Cidr::parse("10.77.0.0/16");
    n.gateway = *IpAddress::parse("10.77.0.1");
    if (ipv6) {
        n.subnet6 = *Cidr::parse("fd00:77::/64");
        n.gateway6 = *IpAddress::parse("fd00:77::1");
    }
    return n;
}

ForwardChain iptables_forward(const char* family = "ip") {
    ForwardChain c;
    c.kind = ForwardChain::Kind::iptables_nft;
    c.family = family;
    c.table = "filter";
    c.chain = "FORWARD";
    c.policy_drop = true;
    return c;
}

}  // namespace

TEST_CASE("nothing drops on a host whose forward chains accept by default", "[foreign]") {
    ForeignFirewalls fw;
    CHECK(foreign_drops(fw, network()).empty());
    auto open = iptables_forward();
    open.policy_drop = false;
    ForwardChain debian;  // /etc/nftables.conf as Debian ships it
    debian.family = "inet";
    debian.table = "filter";
    debian.chain = "forward";
    fw.chains = {open, debian};
    CHECK(foreign_drops(fw, network()).empty());
}

TEST_CASE("iptables' FORWARD drop policy drops the bridge's traffic until both accepts are there",
          "[foreign]") {
    ForeignFirewalls fw;
    fw.chains = {iptables_forward()};
    auto drops = foreign_drops(fw, network());
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].remedy == ForeignDrop::Remedy::iptables_accepts);
    CHECK(drops[0].firewall == "iptables");
    CHECK(drops[0].what ==
          "iptables: chain FORWARD of table ip filter drops by default (policy drop), so the "
          "traffic forwarded to and from bridge portpub0 is dropped");
    CHECK(drops[0].commands ==
          std::vector<std::string>{"iptables -I FORWARD -i portpub0 -j ACCEPT",
                                   "iptables -I FORWARD -o portpub0 -j ACCEPT"});
    // One way accepted: the command for the other.
    fw.chains[0].accepts_in = {"portpub0"};
    drops = foreign_drops(fw, network());
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].commands ==
          std::vector<std::string>{"iptables -I FORWARD -o portpub0 -j ACCEPT"});
    CHECK_FALSE(has_iptables_accepts(fw, false, "portpub0"));
    // Both: passed, by name or by a prefix as iptables writes it (`-o portpub+`).
    fw.chains[0].accepts_out = {"portpub+"};
    CHECK(foreign_drops(fw, network()).empty());
    CHECK(has_iptables_accepts(fw, false, "portpub0"));
    CHECK_FALSE(has_iptables_accepts(fw, false, "br0"));
}

TEST_CASE("who set the drop shows by the table's other chains", "[foreign]") {
    ForeignFirewalls fw;
    fw.chains = {iptables_forward()};
    fw.chains[0].table_chains = {"INPUT", "ufw-before-forward", "ufw-user-input"};
    CHECK(foreign_drops(fw, network()).at(0).firewall == "ufw (iptables)");
    fw.chains[0].table_chains = {"DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1"};
    CHECK(foreign_drops(fw, network()).at(0).firewall == "Docker (iptables)");
    fw.chains[0].kind = ForwardChain::Kind::iptables_legacy;
    const auto legacy = foreign_drops(fw, network()).at(0);
    CHECK(legacy.firewall == "Docker (iptables-legacy)");
    CHECK(legacy.remedy == ForeignDrop::Remedy::by_hand);
    CHECK(legacy.commands ==
          std::vector<std::string>{"iptables-legacy -I FORWARD -i portpub0 -j ACCEPT",
                                   "iptables-legacy -I FORWARD -o portpub0 -j ACCEPT"});
}

TEST_CASE("an IPv6 chain counts for a network with IPv6 only", "[foreign]") {
    ForeignFirewalls fw;
    fw.chains = {iptables_forward("ip6")};
    CHECK(foreign_drops(fw, network(false)).empty());
    const auto drops = foreign_drops(fw, network(true));
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].ipv6_only);
    CHECK_THAT(drops[0].what, Catch::Contains("so the IPv6 traffic forwarded"));
    CHECK(drops[0].commands.at(0) == "ip6tables -I FORWARD -i portpub0 -j ACCEPT");
}

TEST_CASE("another nftables table's forward chain: a final drop, and the nft commands",
          "[foreign]") {
    ForeignFirewalls fw;
    ForwardChain c;
    c.family = "inet";
    c.table = "guard";
    c.chain = "screen";
    c.final_drop = "reject";
    fw.chains = {c};
    const auto drops = foreign_drops(fw, network());
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].remedy == ForeignDrop::Remedy::by_hand);
    CHECK(drops[0].what ==
          "nftables: chain screen of table inet guard ends with a rule that does reject, so the "
          "traffic forwarded to and from bridge portpub0 is dropped");
    CHECK(commands_text(drops) ==
          "nft insert rule inet guard screen iifname \"portpub0\" accept; nft insert rule inet "
          "guard screen oifname \"portpub0\" accept");
    // Other families' hooks are not portpub's traffic.
    fw.chains[0].family = "bridge";
    CHECK(foreign_drops(fw, network()).empty());
}

TEST_CASE("firewalld: its zones decide while it runs, its table when it does not", "[foreign]") {
    ForeignFirewalls fw;
    ForwardChain table;  // firewalld 1.3's own, which ends with a reject
    table.family = "inet";
    table.table = "firewalld";
    table.chain = "filter_FORWARD";
    table.final_drop = "reject";
    fw.chains = {table};
    CHECK(foreign_drops(fw, network()).at(0).firewall == "firewalld");
    fw.firewalld.running = true;
    auto drops = foreign_drops(fw, network());
    REQUIRE(drops.size() == 1);
    CHECK(drops[0].remedy == ForeignDrop::Remedy::firewalld_zone);
    CHECK(drops[0].what ==
          "firewalld: bridge portpub0 is in no zone, so firewalld rejects the containers' "
          "outbound traffic");
    CHECK(drops[0].commands ==
          std::vector<std::string>{"firewall-cmd --zone=trusted --add-interface=portpub0"});
    fw.firewalld.zone_of["portpub0"] = "trusted";
    CHECK(foreign_drops(fw, network()).empty());
    fw.firewalld.strict_forward_ports = true;
    drops = foreign_drops(fw, network());
    REQUIRE(drops.size() == 1);
    CHECK_THAT(drops[0].what, Catch::Contains("StrictForwardPorts=yes"));
}

TEST_CASE("portpub's accepts belong where iptables-nft is or would be", "[foreign]") {
    ForeignFirewalls fw;
    CHECK_FALSE(wants_iptables_accepts(fw, false));
    fw.iptables_nft_installed = true;
    CHECK(wants_iptables_accepts(fw, false));
    fw.iptables_nft_installed = false;
    fw.chains = {iptables_forward("ip6")};
    CHECK(wants_iptables_accepts(fw, true));
    CHECK_FALSE(wants_iptables_accepts(fw, false));
}

TEST_CASE("firewall modes: auto and none, and a clear error for anything else", "[foreign]") {
    CHECK(parse_firewall_mode("auto", "--firewall") == FirewallMode::automatic);
    CHECK(parse_firewall_mode("none", "--firewall") == FirewallMode::none);
    CHECK_THROWS_WITH(parse_firewall_mode("off", "--firewall"),
                      "--firewall 'off' is not a firewall mode: use auto (let the traffic "
                      "through the firewalls beside portpub) or none (leave them alone)");
    CHECK(iptables_comment("portpub0") == "portpub portpub0");
}
