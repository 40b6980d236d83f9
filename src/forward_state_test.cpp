#include "portpub/forward_state.hpp"

#include <catch2/catch.hpp>

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
    HostPortFacts facts;
    // Without a state directory, nothing is held.
    StateStore none("/nonexistent/portpub-state");
    add_forward_holds(facts, none);
    CHECK_FALSE(facts.in_use);
}
