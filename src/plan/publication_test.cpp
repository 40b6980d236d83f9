// Records: a publication reads back as written (IPv6, proxy, phase, older versions), numbers
// out of range, names portpub never gives and malformed records are refused naming the file,
// and the report lists every host port used.
#include "portpub/publication.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "portpub/error.hpp"
#include "test_support.hpp"

using namespace portpub;

TEST_CASE("a record reads back as the publication it was written from", "[record]") {
    auto p = test::publication("web", "10.77.0.2",
                               {"8080:80", "192.0.2.1:5353:53/udp", "1-65535:1-65535/sctp"});
    auto j = to_record(p);
    CHECK(from_record(nlohmann::json::parse(j.dump()), "web.json") == p);
    // A 65,535-port range stays one entry on disk.
    CHECK(j.at("mappings").size() == 3);
    CHECK_FALSE(j.contains("address6"));  // IPv4 only: as records before 0.5
    // The OCI hook's container, for its poststop; records before 0.6 have none.
    p.oci = OciOrigin{"/bundles/web", 4242};
    CHECK(from_record(nlohmann::json::parse(to_record(p).dump()), "web.json") == p);
    auto old = to_record(p);
    old.erase("oci");
    CHECK_FALSE(from_record(old, "web.json").oci);
    // --firewall none; records before 0.7 have no "firewall", and pass.
    CHECK_FALSE(to_record(p).contains("firewall"));
    p.pass_firewalls = false;
    CHECK(to_record(p).at("firewall") == "none");
    CHECK(from_record(nlohmann::json::parse(to_record(p).dump()), "web.json") == p);
    auto odd = to_record(p);
    odd["firewall"] = "off";
    CHECK_THROWS_WITH(from_record(odd, "web.json"),
                      Catch::Contains("'off' is not a firewall mode"));
}

TEST_CASE("a number out of its field's range is refused, not wrapped or cast", "[record]") {
    const auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    auto wraps = to_record(p);
    wraps["mappings"][0]["host_port"] = 70000;  // get<uint16_t> would read 4464
    CHECK_THROWS_WITH(from_record(wraps, "web.json"),
                      Catch::Contains("host_port 70000 is out of range"));
    auto floating = to_record(p);
    floating["netns_inode"] = 4.0e50;  // a cast of it is undefined behaviour
    CHECK_THROWS_WITH(from_record(floating, "web.json"),
                      Catch::Contains("netns_inode") && Catch::Contains("is not a whole number"));
    auto negative = to_record(p);
    negative["version"] = -1;
    CHECK_THROWS_WITH(from_record(negative, "web.json"), Catch::Contains("record web.json"));
}

TEST_CASE("a record with names portpub never gives is refused, naming what is wrong", "[record]") {
    const auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    const std::pair<const char*, nlohmann::json> changes[] = {
        {"invalid container id '../x'", {{"id", "../x"}}},
        {"netns 'netns/web' is not an absolute path", {{"netns", "netns/web"}}},
        {"invalid bridge 'a/b'", {{"bridge", "a/b"}}},
        {"address 10.78.0.2 is not in subnet 10.77.0.0/16", {{"address", "10.78.0.2"}}},
        {"host_veth 'eth0' is not the veth portpub names for 10.77.0.2 (pp0a4d0002)",
         {{"host_veth", "eth0"}}},
        {"gateway 10.77.0.2 does not fit subnet 10.77.0.0/16", {{"gateway", "10.77.0.2"}}},
        {"invalid network name '..'", {{"cni_network", ".."}}},
    };
    for (const auto& [why, change] : changes) {
        auto j = to_record(p);
        j.update(change);
        INFO(change.dump());
        CHECK_THROWS_WITH(
            from_record(j, "web.json"),
            Catch::StartsWith("record web.json is not one portpub wrote (" + std::string(why)));
    }
}

TEST_CASE("a record with IPv6 reads back, and an IPv6 address outside its subnet is refused",
          "[record]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    test::add_ipv6(p);
    auto j = to_record(p);
    CHECK(from_record(nlohmann::json::parse(j.dump()), "web.json") == p);
    CHECK(to_report(p).at("address6") == "fd00:1::2");
    j["address6"] = "fd00:2::2";
    CHECK_THROWS_WITH(from_record(j, "web.json"), Catch::Contains("record web.json is malformed"));
}

TEST_CASE("a record with a proxy reads back, and so does one from before \"ipv6\" was kept",
          "[record]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    p.proxy = ProxyInfo{};
    p.proxy->listen4 = 8080;
    p.proxy->listen6 = 8080;
    p.proxy->ipv6 = true;
    p.proxy->pid = 412;
    auto j = to_record(p);
    CHECK(from_record(nlohmann::json::parse(j.dump()), "web.json") == p);
    auto old = j;
    old["proxy"].erase("ipv6");
    CHECK(from_record(old, "web.json").proxy->ipv6);
    old["proxy"]["listen6"] = 0;  // written on a host without IPv6
    CHECK_FALSE(from_record(old, "web.json").proxy->ipv6);
}

TEST_CASE("a record keeps its phase, and one from before phases were kept is published",
          "[record]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    for (auto phase : {Publication::Phase::pending, Publication::Phase::removing,
                       Publication::Phase::published}) {
        p.phase = phase;
        CHECK(from_record(nlohmann::json::parse(to_record(p).dump()), "web.json").phase == phase);
    }
    auto old = to_record(p);
    old.erase("phase");
    CHECK(from_record(old, "web.json").phase == Publication::Phase::published);
    old["phase"] = "half";
    CHECK_THROWS_WITH(from_record(old, "web.json"), Catch::Contains("unknown phase half"));
}

TEST_CASE("the report lists every port with the host port used", "[record]") {
    auto p = test::publication("web", "10.77.0.2", {"8000-8001:80-81"});
    auto r = to_report(p);
    CHECK(r.at("id") == "web");
    CHECK(r.at("address") == "10.77.0.2");
    CHECK(r.at("bridge") == "portpub0");
    REQUIRE(r.at("mappings").size() == 2);
    CHECK(r.at("mappings")[1] == nlohmann::json{{"host_ip", "0.0.0.0"},
                                                {"host_port", 8001},
                                                {"container_port", 81},
                                                {"protocol", "tcp"}});
}

TEST_CASE("a malformed record is an error naming the file", "[record]") {
    auto j = to_record(test::publication("web", "10.77.0.2", {"8080:80"}));
    for (const char* key : {"address", "subnet", "mappings", "version"}) {
        auto broken = j;
        broken.erase(key);
        CHECK_THROWS_WITH(from_record(broken, "/run/portpub/containers/web.json"),
                          Catch::Contains("/run/portpub/containers/web.json is malformed"));
    }
    auto bad_run = j;
    bad_run["mappings"][0]["count"] = 70000;
    CHECK_THROWS_AS(from_record(bad_run, "x"), Error);
    auto bad_addr = j;
    bad_addr["address"] = "not-an-address";
    CHECK_THROWS_AS(from_record(bad_addr, "x"), Error);
}
