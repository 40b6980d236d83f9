// The change of an up or a down: elements and network added with no rule of their own, another
// CNI plugin's network never isolated, the table dropped with the last container, and a
// network kept while another container uses it.
#include "portpub/firewall_change.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace portpub;

TEST_CASE("up adds the network and one element a port, and no rule of its own", "[nft]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80", "8000-8099:8000-8099"});
    auto c = change_for_up(p);
    CHECK(c.ensure_base);
    CHECK_FALSE(c.drop_table);
    CHECK(c.add.size() == 101);
    REQUIRE(c.add_networks.size() == 1);
    CHECK(c.add_networks[0] == p.network);
    CHECK(c.add_isolated == c.add_networks);  // portpub made it: closed to the outside
    CHECK(c.del.empty());
}

TEST_CASE("a network of another CNI plugin is published into, never isolated", "[nft]") {
    auto chained = test::publication("c1", "198.51.100.5", {"8080:80"}, "cni0", "198.51.100.0/24");
    chained.host_veth.clear();  // attached by the plugin before portpub
    auto up = change_for_up(chained);
    CHECK(up.add_networks.size() == 1);
    CHECK(up.add_isolated.empty());
    auto other = test::publication("x", "10.77.0.2", {"9000:9000"});
    auto down = change_for_down(chained, {other});
    CHECK(down.del_networks.size() == 1);
    CHECK(down.del_isolated.empty());
}

TEST_CASE("down of the last container drops the whole table", "[nft]") {
    auto c = change_for_down(test::publication("web", "10.77.0.2", {"8080:80"}), {});
    CHECK(c.drop_table);
    CHECK(c.del.empty());
}

TEST_CASE("down keeps a network while another container uses it", "[nft]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    auto db = test::publication("db", "10.77.0.3", {"5432:5432"});
    auto other = test::publication("x", "198.51.100.2", {"9000:9000"}, "br1", "198.51.100.0/24");
    auto same_net = change_for_down(web, {db});
    CHECK_FALSE(same_net.drop_table);
    CHECK(same_net.del == nat_elements(web));
    CHECK(same_net.del_networks.empty());
    CHECK(same_net.del_isolated.empty());
    auto last_on_net = change_for_down(web, {other});
    REQUIRE(last_on_net.del_networks.size() == 1);
    CHECK(last_on_net.del_networks[0].bridge == "portpub0");
    CHECK(last_on_net.del_isolated == last_on_net.del_networks);
}

TEST_CASE("an up puts back what the table lacks of the publications beside it", "[firewall]") {
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    auto db = test::publication("db", "10.77.0.3", {"9090:80", "9091:81"});
    auto gone = test::publication("gone", "10.77.0.4", {"7070:80"});
    gone.phase = Publication::Phase::removing;  // an interrupted down: not put back
    auto change = change_for_up(test::publication("new", "10.77.0.5", {"6060:80"}));
    const auto before = change.add.size();
    const auto lacking = add_missing_neighbours(
        change, {web, db, gone}, [&](const std::vector<NatElement>& elements) {
            // web's are all there; db lacks its second.
            std::vector<bool> held(elements.size(), true);
            if (elements.size() == nat_elements(db).size() && elements == nat_elements(db))
                held[1] = false;
            return held;
        });
    CHECK(lacking == 1);
    REQUIRE(change.add.size() == before + 1);
    CHECK(change.add.back() == nat_elements(db)[1]);
    CHECK(change.add_networks.size() == 1);  // one network, once
    CHECK(change.ensure_base);
}
