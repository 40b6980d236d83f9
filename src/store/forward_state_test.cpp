// The applied forwards and their proxy read back as written, and `up` counts a forwarded host
// port as in use, naming the forward that holds it.
#include "portpub/forward_state.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "portpub/error.hpp"

using namespace portpub;

TEST_CASE("the applied forwards round-trip, proxy included", "[forward]") {
    AppliedForwards a;
    a.config = "/etc/portpub/forwards.json";
    a.forwards = {parse_forward("80:5000"),
                  parse_forward("8080:3000", std::string_view("2001:db8::10"))};
    a.proxy = ProcessId{4242, 123456};
    const auto b = parse_applied_forwards(applied_forwards_text(a), "state");
    CHECK(b.config == a.config);
    CHECK(b.forwards == a.forwards);
    REQUIRE(b.proxy);
    CHECK(b.proxy->pid == 4242);
    CHECK(b.proxy->start_time == 123456);
    CHECK_THROWS_WITH(parse_applied_forwards("{}", "/run/portpub/forwards.json"),
                      Catch::Contains("/run/portpub/forwards.json is malformed"));
}

TEST_CASE("up counts a forwarded host port as in use, naming the forward", "[forward]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("portpub-forward-state-test-" + std::to_string(::getpid()));
    StateStore store(dir / "state");
    {
        auto lock = store.lock();  // creates the directory
        HostPortFacts none;
        add_forward_holds(none, store);
        CHECK_FALSE(none.in_use);  // no forwards: the facts stay as they were
        CHECK_FALSE(forwards_need_ip_forward(store));

        AppliedForwards a;
        a.config = "f.json";
        a.forwards = {parse_forward("80:5000"),
                      parse_forward("8080:3000", std::string_view("192.0.2.10"))};
        save_applied_forwards(store, a);
        HostPortFacts facts;
        facts.in_use = [](const std::optional<IpAddress>&, Proto, std::uint16_t port) {
            return port == 22;
        };
        add_forward_holds(facts, store);
        CHECK(facts.in_use(std::nullopt, Proto::tcp, 80));
        CHECK(facts.in_use(IpAddress::parse("127.0.0.1"), Proto::tcp, 8080));
        CHECK(facts.in_use(std::nullopt, Proto::tcp, 22));  // what was in use still is
        CHECK_FALSE(facts.in_use(std::nullopt, Proto::udp, 80));
        CHECK_THAT(facts.holder(std::nullopt, Proto::tcp, 8080),
                   Catch::StartsWith("portpub forward 8080:3000/tcp --to 192.0.2.10 (to "
                                     "192.0.2.10:3000"));
        CHECK(forwards_need_ip_forward(store));

        save_applied_forwards(store, AppliedForwards{});  // nothing: no file
        CHECK_FALSE(store.load_file(kForwardState));
    }
    std::filesystem::remove_all(dir);
}
