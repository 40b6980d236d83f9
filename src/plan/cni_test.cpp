// The CNI plugin's pure part: environment and configuration read or refused with the spec's
// error codes, containerd's key spellings, prevResult, ADD's request, the result and error
// JSON, hostile input, and which publication a DEL or CHECK is about.
#include "portpub/cni.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "test_support.hpp"

using namespace portpub;
using namespace portpub::cni;

namespace {

auto vars(std::map<std::string, std::string> m) {
    return [m](const char* name) -> std::optional<std::string> {
        auto it = m.find(name);
        return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
}

int code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const CniError& e) {
        return e.code();
    }
    return 0;
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const CniError& e) {
        return e.what();
    }
    return "";
}

// What the CNI bridge plugin returns for a container.
const char* kBridgeResult = R"({
  "cniVersion": "1.0.0",
  "interfaces": [
    {"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
    {"name": "veth1234", "mac": "aa:bb:cc:00:00:02"},
    {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/run/netns/c1"}
  ],
  "ips": [
    {"address": "2001:db8::5/64", "interface": 2},
    {"address": "198.51.100.5/24", "gateway": "198.51.100.1", "interface": 2}
  ],
  "routes": [{"dst": "0.0.0.0/0"}]
})";

}  // namespace

TEST_CASE("the CNI environment is read as each command needs it", "[cni]") {
    auto add = parse_environment(vars({{"CNI_COMMAND", "ADD"},
                                       {"CNI_CONTAINERID", "c1"},
                                       {"CNI_NETNS", "/run/netns/c1"},
                                       {"CNI_IFNAME", "eth0"},
                                       {"CNI_PATH", "/opt/cni/bin"}}));
    CHECK(add.command == Command::add);
    CHECK(add.container_id == "c1");
    CHECK(add.netns == "/run/netns/c1");
    CHECK(add.ifname == "eth0");
    // DEL works without a namespace; VERSION, STATUS and GC need no container.
    auto del = parse_environment(
        vars({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "c1"}, {"CNI_IFNAME", "eth0"}}));
    CHECK(del.command == Command::del);
    CHECK(del.netns.empty());
    CHECK(parse_environment(vars({{"CNI_COMMAND", "VERSION"}})).command == Command::version);
    CHECK(parse_environment(vars({{"CNI_COMMAND", "STATUS"}})).command == Command::status);
    CHECK(parse_environment(vars({{"CNI_COMMAND", "GC"}})).command == Command::gc);
}

TEST_CASE("a bad CNI environment is error 4 naming the variable", "[cni]") {
    const std::pair<std::map<std::string, std::string>, std::string> cases[] = {
        {{}, "CNI_COMMAND '' is not a CNI command"},
        {{{"CNI_COMMAND", "add"}}, "CNI_COMMAND 'add'"},
        {{{"CNI_COMMAND", "ADD"}, {"CNI_NETNS", "/n"}, {"CNI_IFNAME", "eth0"}},
         "CNI_CONTAINERID is not set"},
        {{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_IFNAME", "eth0"}},
         "CNI_NETNS is not set"},
        {{{"CNI_COMMAND", "CHECK"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/n"}},
         "CNI_IFNAME is not set"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "../c1"},
          {"CNI_NETNS", "/n"},
          {"CNI_IFNAME", "eth0"}},
         "invalid container id '../c1'"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_NETNS", "/n"},
          {"CNI_IFNAME", "a-very-long-interface-name"}},
         "invalid CNI_IFNAME"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c1/../../x"},
          {"CNI_NETNS", "/n"},
          {"CNI_IFNAME", "eth0"}},
         "CNI_CONTAINERID: invalid container id 'c1/../../x'"},
        {{{"CNI_COMMAND", "DEL"},
          {"CNI_CONTAINERID", std::string(129, 'c')},
          {"CNI_IFNAME", "eth0"}},
         "use 1-128 letters"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c\xff"},
          {"CNI_NETNS", "/n"},
          {"CNI_IFNAME", "eth0"}},
         "invalid container id 'c\\xff'"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_NETNS", "/run/netns/c\x01"},
          {"CNI_IFNAME", "eth0"}},
         "CNI_NETNS: namespace path '/run/netns/c\\x01'"},
        {{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_NETNS", "/n"},
          {"CNI_IFNAME", "../eth0"}},
         "invalid CNI_IFNAME '../eth0'"},
    };
    for (const auto& [env, message] : cases) {
        INFO(message);
        CHECK(code_of([&] { parse_environment(vars(env)); }) == kInvalidEnvironment);
        CHECK_THAT(message_of([&] { parse_environment(vars(env)); }), Catch::Contains(message));
    }
}

TEST_CASE("a network configuration is read with its runtime config", "[cni]") {
    auto c = parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "bridge":"pp1","subnet":"198.51.100.0/24","stateDir":"/run/pp",
        "runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":80,"protocol":"tcp"},
            {"hostPort":5353,"containerPort":53,"protocol":"UDP","hostIP":"127.0.0.1"}]},
        "someOtherPluginKey": true})",
                          Command::add);
    CHECK(c.cni_version == "1.0.0");
    CHECK(c.name == "web");
    CHECK(c.bridge == "pp1");
    CHECK(c.subnet == "198.51.100.0/24");
    CHECK(c.state_dir == "/run/pp");
    REQUIRE(c.port_mappings.size() == 2);
    CHECK(c.port_mappings[0] == PortMapping{8080, 80, "tcp", ""});
    CHECK(c.port_mappings[1] == PortMapping{5353, 53, "udp", "127.0.0.1"});
    CHECK_FALSE(c.prev_result);
    CHECK(c.pass_firewalls);
    // As `up --firewall none`.
    CHECK_FALSE(parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "firewall":"none"})",
                             Command::add)
                    .pass_firewalls);
    CHECK_THROWS_WITH(parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "firewall":"off"})",
                                   Command::add),
                      Catch::Contains("network configuration: firewall 'off' is not a firewall"));
    // As `up --no-watch`.
    CHECK(c.watch);
    const auto unwatched = parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "watch":false})",
                                        Command::add);
    CHECK_FALSE(unwatched.watch);
    CHECK_FALSE(up_request(unwatched, Environment{}).watch);
    CHECK_THROWS_WITH(parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "watch":"no"})",
                                   Command::add),
                      Catch::Contains("network configuration: watch must be true or false"));
    // As `up --loopback proxy`.
    CHECK(c.rewrite);
    CHECK(up_request(c, Environment{}).rewrite);
    const auto proxied = parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "loopback":"proxy"})",
                                      Command::add);
    CHECK_FALSE(up_request(proxied, Environment{}).rewrite);
    CHECK_THROWS_WITH(parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "loopback":"bpf"})",
                                   Command::add),
                      Catch::Contains("network configuration: loopback 'bpf' is not a loopback "
                                      "mode"));

    auto gc = parse_config(R"({"cniVersion":"1.1.0","name":"web","type":"portpub",
        "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]})",
                           Command::gc);
    REQUIRE(gc.valid_attachments.size() == 1);
    CHECK(gc.valid_attachments[0] == ValidAttachment{"c1", "eth0"});
    // Keys in any case, as Go plugins read them; ifname may be left out.
    auto spelt = parse_config(R"({"cniVersion":"1.1.0","name":"web","type":"portpub",
        "cni.dev/valid-attachments":[{"containerId":"c1","IfName":"eth1"},{"CONTAINERID":"c2"}]})",
                              Command::gc);
    REQUIRE(spelt.valid_attachments.size() == 2);
    CHECK(spelt.valid_attachments[0] == ValidAttachment{"c1", "eth1"});
    CHECK(spelt.valid_attachments[1] == ValidAttachment{"c2", ""});
    // One that names no container: GC would not know what to keep.
    CHECK_THROWS_WITH(parse_config(R"({"cniVersion":"1.1.0","name":"web","type":"portpub",
        "cni.dev/valid-attachments":[{"ifname":"eth0"}]})",
                                   Command::gc),
                      Catch::Contains("valid-attachments[0] has no containerID"));
    // VERSION reads only the version, whatever it is.
    CHECK(parse_config(R"({"cniVersion":"0.3.1"})", Command::version).cni_version == "0.3.1");
}

TEST_CASE("port mappings as containerd sends them: keys in Go's field names", "[cni]") {
    // go-cni's PortMapping has no JSON tags; Go plugins match keys in any case.
    auto c = parse_config(R"({"cniVersion":"1.0.0","name":"k8s","type":"portpub",
        "runtimeConfig":{"portMappings":[
            {"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""},
            {"HostPort":5353,"ContainerPort":53,"Protocol":"udp","HostIP":"127.0.0.1"},
            {"hostport":9090,"CONTAINERPORT":90}]}})",
                          Command::add);
    REQUIRE(c.port_mappings.size() == 3);
    CHECK(c.port_mappings[0] == PortMapping{8080, 80, "tcp", ""});
    CHECK(c.port_mappings[1] == PortMapping{5353, 53, "udp", "127.0.0.1"});
    CHECK(c.port_mappings[2] == PortMapping{9090, 90, "tcp", ""});
    // The exact spelling wins over another.
    auto both = parse_config(R"({"cniVersion":"1.0.0","name":"k8s","type":"portpub",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"HostPort":1,"containerPort":80}]}})",
                             Command::add);
    CHECK(both.port_mappings.at(0).host_port == 8080);
    // A bad value in another spelling is still named.
    CHECK(code_of([] {
              parse_config(R"({"cniVersion":"1.0.0","name":"k","type":"portpub",
                  "runtimeConfig":{"portMappings":[{"HostPort":0,"ContainerPort":80}]}})",
                           Command::add);
          }) == kInvalidConfig);
}

TEST_CASE("an error answers in the configuration's CNI version when it names one", "[cni]") {
    CHECK(reply_version(R"({"cniVersion":"1.0.0","name":"x"})") == "1.0.0");
    CHECK(reply_version(R"({"cniVersion":"1.1.0"})") == "1.1.0");
    CHECK(reply_version(R"({"cniVersion":"0.4.0"})") == kLatestVersion);
    CHECK(reply_version(R"({"cniVersion":7})") == kLatestVersion);
    CHECK(reply_version("not json") == kLatestVersion);
    CHECK(reply_version("[]") == kLatestVersion);
}

TEST_CASE("a bad network configuration is error 6, 1 or 7 naming the field", "[cni]") {
    const std::tuple<std::string, int, std::string> cases[] = {
        {"", kUndecodable, "not JSON"},
        {"{\"cniVersion\":", kUndecodable, "not JSON"},
        {"[1]", kUndecodable, "not a JSON object"},
        {R"({"name":"n","type":"portpub"})", kInvalidConfig, "cniVersion is missing"},
        {R"({"cniVersion":"0.4.0","name":"n","type":"portpub"})", kIncompatibleVersion,
         "CNI version 0.4.0 is not supported"},
        {R"({"cniVersion":"1.0.0","type":"portpub"})", kInvalidConfig, "name is missing"},
        {R"({"cniVersion":"1.0.0","name":"n"})", kInvalidConfig, "type is missing"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"portpub","bridge":7})", kInvalidConfig,
         "bridge must be a string, not 7"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"portpub","stateDir":"run"})", kInvalidConfig,
         "stateDir 'run' must be an absolute path"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":{}}})",
         kInvalidConfig, "runtimeConfig.portMappings must be a list"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":80},{"hostPort":0,"containerPort":80}]}})",
         kInvalidConfig, "runtimeConfig.portMappings[1].hostPort 0: give a port from 1 to 65535"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":[
            {"hostPort":8080}]}})",
         kInvalidConfig, "portMappings[0].containerPort is missing"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":"80"}]}})",
         kInvalidConfig, "portMappings[0].containerPort must be a number"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":80,"protocol":"icmp"}]}})",
         kInvalidConfig, "protocol 'icmp': use tcp, udp or sctp"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":80,"hostIP":"localhost"}]}})",
         kInvalidConfig, "hostIP 'localhost' is not an IP address"},
        {R"({"cniVersion":"1.0.0","name":"n","type":"p","prevResult":[]})", kInvalidConfig,
         "prevResult must be an object"},
        {R"({"cniVersion":"1.0.0","name":"../n","type":"portpub"})", kInvalidConfig,
         "network configuration: invalid network name '../n'"},
        {R"({"cniVersion":"1.0.0","name":"a/b","type":"portpub"})", kInvalidConfig,
         "invalid network name 'a/b'"},
        {R"({"cniVersion":"1.0.0","name":"n\u0000","type":"portpub"})", kInvalidConfig,
         "invalid network name 'n\\x00'"},
        // Not UTF-8: the parser's message shows the byte, printable.
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\xff\"}", kUndecodable, "not JSON"},
    };
    for (const auto& [text, code, message] : cases) {
        INFO(text);
        CHECK(code_of([&] { parse_config(text, Command::add); }) == code);
        CHECK_THAT(message_of([&] { parse_config(text, Command::add); }), Catch::Contains(message));
    }
}

TEST_CASE("CNI errors are JSON a runtime can read, whatever they quote", "[cni]") {
    // Bytes that are not UTF-8 in the input must not make the error JSON
    // unencodable (nlohmann::json refuses to dump them).
    CniError e(kUndecodable, "bad \xff value\n", "details \xc3(");
    CHECK(std::string(e.what()) == "bad \\xff value\\x0a");
    CHECK(e.details() == "details \\xc3(");
    auto j = error_json(e, "1.0.0");
    CHECK_NOTHROW(j.dump());
    try {
        parse_config("{\"cniVersion\":\"1.0.0\",\"name\":\"n\xff\"}", Command::add);
        FAIL("no error");
    } catch (const CniError& err) {
        CHECK_NOTHROW(error_json(err, "1.0.0").dump());
        CHECK_THAT(err.details(), Catch::Contains("ill-formed UTF-8") && Catch::Contains("\\xff"));
    }
}

TEST_CASE("port mappings become -p specs, consecutive ports one range", "[cni]") {
    std::vector<PortMapping> m;
    for (int i = 0; i < 1000; ++i)
        m.push_back({8000 + i, 8000 + i, "tcp", ""});
    m.push_back({9000, 90, "tcp", ""});
    m.push_back({9001, 92, "tcp", ""});             // container port not next: a new spec
    m.push_back({9002, 93, "udp", ""});             // another protocol
    m.push_back({9003, 94, "udp", "2001:db8::1"});  // another address, bracketed
    CHECK(port_specs(m) == std::vector<std::string>{"8000-8999:8000-8999/tcp", "9000:90/tcp",
                                                    "9001:92/tcp", "9002:93/udp",
                                                    "[2001:db8::1]:9003:94/udp"});
    CHECK(port_specs({}).empty());
}

TEST_CASE("the container's address comes from the previous plugin's result", "[cni]") {
    auto a = attachment_from(nlohmann::json::parse(kBridgeResult), "eth0");
    CHECK(a.address.str() == "198.51.100.5");
    CHECK(a.network.subnet.str() == "198.51.100.0/24");
    CHECK(a.network.gateway.str() == "198.51.100.1");
    CHECK(a.network.bridge == "cni0");
    // The IPv6 address too: IPv6 clients reach it through kernel DNAT.
    REQUIRE(a.address6);
    CHECK(a.address6->str() == "2001:db8::5");
    CHECK(a.network.subnet6->str() == "2001:db8::/64");
    CHECK(a.network.gateway6.str() == "2001:db8::1");
    auto only_v4 = nlohmann::json::parse(kBridgeResult);
    only_v4["ips"].erase(0);
    CHECK_FALSE(attachment_from(only_v4, "eth0").address6);

    // No address for that interface, or no IPv4 address at all.
    CHECK_THAT(message_of([] { attachment_from(nlohmann::json::parse(kBridgeResult), "net1"); }),
               Catch::Contains("no IPv4 address for interface net1"));
    auto only_v6 = nlohmann::json::parse(kBridgeResult);
    only_v6["ips"].erase(1);
    CHECK(code_of([&] { attachment_from(only_v6, "eth0"); }) == kInvalidConfig);
    auto bad = nlohmann::json::parse(kBridgeResult);
    bad["ips"][1]["interface"] = 9;
    CHECK_THAT(message_of([&] { attachment_from(bad, "eth0"); }),
               Catch::Contains("interface 9 names no interface"));
}

TEST_CASE("ADD's request: chained with prevResult, main plugin without", "[cni]") {
    Environment env{Command::add, "c1", "/run/netns/c1", "eth0"};
    auto c = parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]}})",
                          Command::add);
    auto main = up_request(c, env);
    CHECK(main.id == "c1");
    CHECK(main.netns == "/run/netns/c1");
    CHECK(main.ifname == "eth0");
    CHECK(main.specs == std::vector<std::string>{"8080:80/tcp"});
    CHECK(main.cni_network == "web");
    CHECK(main.runtime_holds_ports);  // the runtime (Podman) binds the host ports itself
    CHECK_FALSE(main.reserve);
    CHECK_FALSE(main.attached);

    c.prev_result = nlohmann::json::parse(kBridgeResult);
    auto chained = up_request(c, env);
    REQUIRE(chained.attached);
    CHECK(chained.attached->address.str() == "198.51.100.5");
}

TEST_CASE("the main plugin's result names interfaces, address and route", "[cni]") {
    Publication p;
    p.network = {"pp1",
                 *Cidr::parse("198.51.100.0/24"),
                 *IpAddress::parse("198.51.100.1"),
                 std::nullopt,
                 {}};
    p.address = *IpAddress::parse("198.51.100.2");
    p.ifname = "eth0";
    p.host_veth = "pp0c633602";
    p.netns = "/run/netns/c1";
    auto r = main_result(p, "1.0.0");
    CHECK(r["cniVersion"] == "1.0.0");
    CHECK(r["interfaces"][0]["name"] == "pp1");
    CHECK(r["interfaces"][1]["name"] == "pp0c633602");
    CHECK(r["interfaces"][2]["name"] == "eth0");
    CHECK(r["interfaces"][2]["sandbox"] == "/run/netns/c1");
    CHECK(r["interfaces"][2]["mac"] == "02:70:c6:33:64:02");
    CHECK(r["ips"][0]["address"] == "198.51.100.2/24");
    CHECK(r["ips"][0]["gateway"] == "198.51.100.1");
    CHECK(r["ips"][0]["interface"] == 2);
    CHECK(r["routes"][0]["dst"] == "0.0.0.0/0");
    CHECK(r["ips"].size() == 1);

    test::add_ipv6(p);
    r = main_result(p, "1.0.0");
    CHECK(r["ips"][1]["address"] == "fd00:1::2/64");
    CHECK(r["ips"][1]["gateway"] == "fd00:1::1");
    CHECK(r["ips"][1]["interface"] == 2);
    CHECK(r["routes"][1]["dst"] == "::/0");
}

TEST_CASE("the main plugin takes ipv6 and subnet6 as up takes --ipv6 and --subnet6", "[cni]") {
    Environment env{Command::add, "c1", "/run/netns/c1", "eth0"};
    auto c = parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub",
        "subnet6":"fd00:7::/64","ipv6":true})",
                          Command::add);
    auto req = up_request(c, env);
    CHECK(req.ipv6);
    CHECK(req.subnet6 == "fd00:7::/64");
    CHECK(code_of([] {
              parse_config(R"({"cniVersion":"1.0.0","name":"web","type":"portpub","ipv6":"yes"})",
                           Command::add);
          }) == kInvalidConfig);
}

TEST_CASE("errors and VERSION answer as the spec defines", "[cni]") {
    auto e = error_json(CniError(7, "bad", "more"), "1.0.0");
    CHECK(e == nlohmann::json{
                   {"cniVersion", "1.0.0"}, {"code", 7}, {"msg", "bad"}, {"details", "more"}});
    // A version portpub does not speak is answered in its own.
    CHECK(error_json(CniError(1, "old"), "0.4.0")["cniVersion"] == "1.1.0");
    CHECK_FALSE(error_json(CniError(1, "old"), "1.1.0").contains("details"));
    CHECK(version_json()["supportedVersions"] == nlohmann::json{"1.0.0", "1.1.0"});
}

TEST_CASE("a prevResult field of the wrong type is error 7 naming it", "[cni]") {
    // Found by tests/fuzz/cni_config_fuzz.cpp: json::value() threw a
    // json::type_error, which the plugin answered as code 100 naming no field.
    auto address = nlohmann::json::parse(kBridgeResult);
    address["ips"][1]["address"] = 10;
    CHECK(code_of([&] { attachment_from(address, "eth0"); }) == kInvalidConfig);
    CHECK_THAT(message_of([&] { attachment_from(address, "eth0"); }),
               Catch::Contains("ips[].address must be a string, not 10"));
    auto sandbox = nlohmann::json::parse(kBridgeResult);
    sandbox["interfaces"][2]["sandbox"] = true;
    CHECK_THAT(message_of([&] { attachment_from(sandbox, "eth0"); }),
               Catch::Contains("interfaces[].sandbox must be a string, not true"));
    auto name = nlohmann::json::parse(kBridgeResult);
    name["interfaces"][0]["name"] = nlohmann::json::array();
    CHECK_THAT(message_of([&] { attachment_from(name, "eth0"); }),
               Catch::Contains("interfaces[].name must be a string, not []"));
    // The host-side name goes into an nftables set of 15-byte names.
    auto long_name = nlohmann::json::parse(kBridgeResult);
    long_name["interfaces"][0]["name"] = "a-bridge-name-too-long";
    CHECK_THAT(message_of([&] { attachment_from(long_name, "eth0"); }),
               Catch::Contains("invalid prevResult interface name 'a-bridge-name-too-long'"));
}

TEST_CASE("a configuration nested deeper than 128 levels is error 7", "[cni]") {
    // Copying or printing a json value recurses once a level: 100,000 levels
    // of prevResult overflowed the plugin's stack.
    const auto nested = [](std::size_t depth) {
        return R"({"cniVersion":"1.0.0","name":"n","type":"portpub","prevResult":{"x":)" +
               std::string(depth, '[') + std::string(depth, ']') + "}}";
    };
    CHECK_NOTHROW(parse_config(nested(126), Command::add));
    CHECK(code_of([&] { parse_config(nested(127), Command::add); }) == kInvalidConfig);
    CHECK_THAT(message_of([&] { parse_config(nested(1000000), Command::add); }),
               Catch::Contains("nest deeper than 128 levels"));
    // Brackets in strings are text, not nesting.
    CHECK_NOTHROW(parse_config(R"({"cniVersion":"1.0.0","name":"n","type":"portpub","x":")" +
                                   std::string(1000, '[') + R"(\"{"})",
                               Command::add));
}

TEST_CASE("hostile bytes in the environment or stdin still make printable error JSON", "[cni]") {
    // A raw byte that is not UTF-8 in a message made error_json(...).dump()
    // throw json::type_error 316: the plugin died instead of answering.
    const std::function<void()> rejected[] = {
        [] {
            parse_environment(vars({{"CNI_COMMAND", "\xff\n"}}));
        },
        [] {
            parse_environment(vars({{"CNI_COMMAND", "ADD"},
                                    {"CNI_CONTAINERID", "c1"},
                                    {"CNI_NETNS", "/n"},
                                    {"CNI_IFNAME", "eth\xe9"}}));
        },
        [] { parse_config("\xff", Command::add); },
    };
    for (const auto& f : rejected) {
        try {
            f();
            FAIL("accepted");
        } catch (const CniError& e) {
            std::string out;
            CHECK_NOTHROW(out = error_json(e, "1.0.0").dump());
            CHECK(out.find('\n') == std::string::npos);
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("DEL and CHECK are about a publication only for its namespace and interface", "[cni]") {
    auto p = test::publication("ctrA", "10.77.0.2", {"8080:80"});
    p.cni_network = "labnet";
    p.netns = "/run/netns/c1";
    p.netns_inode = 4026532001;
    Environment env{Command::del, "ctrA", "/run/netns/c1", "eth0"};
    CHECK_FALSE(not_for(p, "labnet", env, 4026532001));
    CHECK_FALSE(not_for(p, "labnet", env, std::nullopt));  // the namespace is gone: its path
    env.netns = "";                                        // DEL without a namespace
    CHECK_FALSE(not_for(p, "labnet", env, std::nullopt));
    // Another namespace (by inode, and by path once it is gone), interface, network.
    env.netns = "/run/netns/c2";
    CHECK(not_for(p, "labnet", env, 4026532002) ==
          "the publication of container ctrA is in namespace /run/netns/c1, not /run/netns/c2");
    CHECK(not_for(p, "labnet", env, std::nullopt));
    env.netns = "/run/netns/c1";
    CHECK(not_for(p, "labnet", env, 4026532002));  // the same path holds another namespace now
    env.ifname = "eth1";
    CHECK(not_for(p, "labnet", env, 4026532001) ==
          "the publication of container ctrA is on interface eth0, not eth1");
    env.ifname = "eth0";
    CHECK(not_for(p, "other", env, 4026532001));
}
