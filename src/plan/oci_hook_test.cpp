// The OCI hook's decisions: the state read or refused, createRuntime publishing the
// annotation's ports, poststop unpublishing only its own container's publication, other states
// doing nothing, and hostile input getting one-line messages.
#include "portpub/oci_hook.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "portpub/error.hpp"
#include "test_support.hpp"

using namespace portpub;

namespace {

// A state as runc writes it for a createRuntime hook.
std::string creating(const std::string& annotations, const std::string& pid = "4242") {
    return R"({"ociVersion":"1.0.2","id":"web1","status":"creating","pid":)" + pid +
           R"(,"bundle":"/var/lib/bundles/web1","annotations":{)" + annotations + "}}";
}

}  // namespace

TEST_CASE("an OCI state is read as the runtime-spec defines it", "[oci_hook]") {
    auto s = parse_oci_state(creating(R"("io.portpub.ports":"8080:80","other":"x")"));
    CHECK(s.id == "web1");
    CHECK(s.status == "creating");
    CHECK(s.pid == 4242);
    CHECK(s.bundle == "/var/lib/bundles/web1");
    CHECK(s.annotations.at("io.portpub.ports") == "8080:80");
    CHECK(s.annotations.at("other") == "x");
    // poststop: no pid, no annotations
    auto stopped = parse_oci_state(R"({"ociVersion":"1.0.2","id":"web1","status":"stopped",)"
                                   R"("bundle":"/b"})");
    CHECK_FALSE(stopped.pid);
    CHECK(stopped.annotations.empty());
}

TEST_CASE("a malformed OCI state is an error saying what is wrong", "[oci_hook]") {
    const std::pair<std::string, std::string> cases[] = {
        {"", "not JSON"},
        {"{\"id\":", "not JSON"},
        {"[]", "not a JSON object"},
        {R"({"status":"creating"})", "has no \"id\""},
        {R"({"id":"web1"})", "has no \"status\""},
        {R"({"id":7,"status":"creating"})", "\"id\" is not a string"},
        {R"({"id":"../../etc","status":"creating"})", "invalid container id '../../etc'"},
        {R"({"id":"a/b","status":"stopped"})", "invalid container id 'a/b'"},
        {R"({"id":"web1","status":"creating","pid":"12"})", "\"pid\" of container web1"},
        {R"({"id":"web1","status":"creating","annotations":[]})", "is not an object"},
        {R"({"id":"web1","status":"creating","annotations":{"io.portpub.ports":8080}})",
         "annotation io.portpub.ports of container web1 is not a string"},
    };
    for (const auto& [text, message] : cases) {
        INFO(text);
        CHECK_THROWS_WITH(parse_oci_state(text), Catch::Contains(message));
    }
    // A 200-character id is refused before it can name a file.
    CHECK_THROWS_WITH(
        parse_oci_state(R"({"id":")" + std::string(200, 'a') + R"(","status":"stopped"})"),
        Catch::Contains("1-128 letters"));
}

TEST_CASE("createRuntime publishes the annotation's ports in the container's namespace",
          "[oci_hook]") {
    auto a =
        hook_action(parse_oci_state(creating(R"("io.portpub.ports":" 8080:80, 5353:53/udp")")));
    REQUIRE(a.kind == HookAction::Kind::publish);
    CHECK(a.id == "web1");
    CHECK(a.up.id == "web1");
    CHECK(a.up.netns == "/proc/4242/ns/net");
    CHECK(a.up.specs == std::vector<std::string>{"8080:80", "5353:53/udp"});
    CHECK(a.up.bridge == "portpub0");  // defaults, as `portpub up`
    CHECK(a.up.subnet == "10.77.0.0/16");

    auto b = hook_action(parse_oci_state(
        creating(R"("io.portpub.ports":"80","io.portpub.netns":"/run/netns/x",)"
                 R"("io.portpub.bridge":"br9","io.portpub.subnet":"192.0.2.0/24")")));
    CHECK(b.up.netns == "/run/netns/x");
    CHECK(b.up.bridge == "br9");
    CHECK(b.up.subnet == "192.0.2.0/24");
    CHECK_FALSE(b.up.ipv6);

    // IPv6, as `up --ipv6` and `--subnet6`.
    auto v6 = hook_action(parse_oci_state(creating(
        R"("io.portpub.ports":"80","io.portpub.ipv6":"true","io.portpub.subnet6":"fd00:1::/64")")));
    CHECK(v6.up.ipv6);
    CHECK(v6.up.subnet6 == "fd00:1::/64");
    CHECK_THROWS_WITH(hook_action(parse_oci_state(
                          creating(R"("io.portpub.ports":"80","io.portpub.ipv6":"yes")"))),
                      Catch::Contains("annotation io.portpub.ipv6='yes' of container") &&
                          Catch::Contains("must be true or false"));

    // As `up --no-watch`.
    CHECK(b.up.watch);
    CHECK_FALSE(hook_action(parse_oci_state(
                                creating(R"("io.portpub.ports":"80","io.portpub.watch":"false")")))
                    .up.watch);
    CHECK_THROWS_WITH(
        hook_action(parse_oci_state(creating(R"("io.portpub.ports":"80","io.portpub.watch":"0")"))),
        Catch::Contains("annotation io.portpub.watch='0' of container"));

    // As `up --loopback`.
    CHECK(b.up.rewrite);
    CHECK_FALSE(hook_action(parse_oci_state(creating(
                                R"("io.portpub.ports":"80","io.portpub.loopback":"proxy")")))
                    .up.rewrite);
    CHECK_THROWS_WITH(hook_action(parse_oci_state(
                          creating(R"("io.portpub.ports":"80","io.portpub.loopback":"ebpf")"))),
                      Catch::Contains("annotation io.portpub.loopback of container") &&
                          Catch::Contains("'ebpf' is not a loopback mode"));

    // As `up --firewall`.
    CHECK(b.up.pass_firewalls);
    auto none = hook_action(
        parse_oci_state(creating(R"("io.portpub.ports":"80","io.portpub.firewall":"none")")));
    CHECK_FALSE(none.up.pass_firewalls);
    CHECK_THROWS_WITH(hook_action(parse_oci_state(
                          creating(R"("io.portpub.ports":"80","io.portpub.firewall":"off")"))),
                      Catch::Contains("annotation io.portpub.firewall of container") &&
                          Catch::Contains("'off' is not a firewall mode"));

    // The deprecated prestart hook sees "created".
    auto c = parse_oci_state(creating(R"("io.portpub.ports":"80")"));
    c.status = "created";
    CHECK(hook_action(c).kind == HookAction::Kind::publish);
}

TEST_CASE("poststop unpublishes by id, while other states and no annotation do nothing",
          "[oci_hook]") {
    auto stopped = hook_action(parse_oci_state(R"({"id":"web1","status":"stopped"})"));
    CHECK(stopped.kind == HookAction::Kind::unpublish);
    CHECK(stopped.id == "web1");
    auto running = parse_oci_state(creating(R"("io.portpub.ports":"80")"));
    running.status = "running";
    CHECK(hook_action(running).kind == HookAction::Kind::nothing);
    auto bare = hook_action(parse_oci_state(creating("")));
    CHECK(bare.kind == HookAction::Kind::nothing);
    CHECK_THAT(bare.why, Catch::Contains("no io.portpub.ports annotation"));
}

TEST_CASE("hook input that cannot be acted on is an error naming it", "[oci_hook]") {
    auto error_of = [](const std::string& state) {
        try {
            hook_action(parse_oci_state(state));
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(error_of(creating(R"("io.portpub.ports":"8080:80,,81")")),
               Catch::Contains("io.portpub.ports='8080:80,,81' of container web1 has an empty "
                               "port spec"));
    CHECK_THAT(error_of(creating(R"("io.portpub.ports":"")")), Catch::Contains("empty port spec"));
    CHECK_THAT(error_of(creating(R"("io.portpub.port":"80")")),
               Catch::Contains("unknown annotation io.portpub.port on container web1"));
    CHECK_THAT(error_of(R"({"id":"web1","status":"creating","annotations":)"
                        R"({"io.portpub.ports":"80"}})"),
               Catch::Contains("has no pid"));
    CHECK_THAT(error_of(creating(R"("io.portpub.ports":"80")", "0")),
               Catch::Contains("has no pid"));
    CHECK_THAT(error_of(R"({"id":"web1","status":"paused"})"), Catch::Contains("status 'paused'"));
}

TEST_CASE("hostile OCI state gets one-line messages", "[oci_hook]") {
    // Found by tests/fuzz/oci_state_fuzz.cpp: messages quoted the JSON parser's
    // "last read" (a raw DEL here), an id or an annotation as they came.
    auto error_of = [](const std::string& state) {
        try {
            hook_action(parse_oci_state(state));
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string states[] = {
        "\x7f\"ociVersion\":\"1.0.2\"}",
        R"({"id":"web\n1","status":"creating","pid":1})",
        R"({"id":"web1","status":"creat\ring","pid":1})",
        creating(R"("io.portpub.ports":"8080:80\n")"),
        creating(R"("io.portpub.p\u001b[2Jorts":"80")"),
        creating(R"("io.portpub.ports":"80","io.portpub.subnet":"10.77.0.0/16\n")"),
    };
    for (const auto& state : states) {
        const auto msg = error_of(state);
        INFO(state << " -> " << msg);
        if (msg == "no error") {
            // hook_action accepts the spec and subnet as text; validate_request judges them.
            auto action = hook_action(parse_oci_state(state));
            try {
                validate_request(action.up);
                FAIL("accepted");
            } catch (const Error& e) {
                const std::string m = e.what();
                CHECK(std::none_of(m.begin(), m.end(),
                                   [](unsigned char c) { return c < 0x20 || c == 0x7f; }));
            }
            continue;
        }
        CHECK(std::none_of(msg.begin(), msg.end(),
                           [](unsigned char c) { return c < 0x20 || c == 0x7f; }));
    }
}

TEST_CASE("a poststop removes only the publication of its own container", "[oci_hook]") {
    auto p = test::publication("web", "10.77.0.2", {"8080:80"});
    p.netns = "/proc/4242/ns/net";
    p.oci = OciOrigin{"/bundles/a", 4242};
    // runc passes no pid once a container stopped: the bundle decides.
    CHECK(poststop_is_for(p, {"/bundles/a", 0}, false));
    CHECK(poststop_is_for(p, {"/bundles/a", 4242}, false));
    CHECK_FALSE(poststop_is_for(p, {"/bundles/b", 0}, false));
    CHECK_FALSE(poststop_is_for(p, {"/bundles/a", 5151}, false));
    CHECK(poststop_is_for(p, {"", 0}, false));  // a state with neither: nothing to refute
    // The same bundle, but the container still runs: another one's poststop.
    CHECK_FALSE(poststop_is_for(p, {"/bundles/a", 0}, true));
    // A namespace file outlives the container (Podman's): alive says nothing.
    p.netns = "/run/netns/cni-1234";
    CHECK(poststop_is_for(p, {"/bundles/a", 0}, true));
    // A record without an origin (the CLI, portpub before 0.6): the namespace alone.
    p.oci.reset();
    p.netns = "/proc/4242/ns/net";
    CHECK(poststop_is_for(p, {"/bundles/x", 1}, false));
    CHECK_FALSE(poststop_is_for(p, {"/bundles/x", 1}, true));
    // CNI's publications are DEL's.
    p.cni_network = "labnet";
    CHECK_FALSE(poststop_is_for(p, {"/bundles/a", 0}, false));
}

TEST_CASE("createRuntime and poststop carry the state's bundle and pid", "[oci_hook]") {
    auto up = hook_action(parse_oci_state(creating(R"("io.portpub.ports":"80")")));
    REQUIRE(up.up.oci);
    CHECK(*up.up.oci == OciOrigin{"/var/lib/bundles/web1", 4242});
    auto down = hook_action(
        parse_oci_state(R"({"ociVersion":"1.0.2","id":"web1","status":"stopped","bundle":"/b"})"));
    CHECK(down.kind == HookAction::Kind::unpublish);
    CHECK(down.origin == OciOrigin{"/b", 0});
}
