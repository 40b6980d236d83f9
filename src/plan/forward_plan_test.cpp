// What forwards become: redirect elements for local ones, dnat elements and masquerade targets
// for remote ones, element bytes as the kernel keeps them, proxy routes for remote TCP only,
// and the forwarding each family needs.
#include "portpub/forward_plan.hpp"

#include <catch2/catch.hpp>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

std::vector<std::string> texts(const std::vector<ForwardElement>& es) {
    std::vector<std::string> out;
    for (const auto& e : es)
        out.push_back(element_text(e));
    return out;
}

}  // namespace

TEST_CASE("local forwards are redirect elements, remote ones dnat and a masquerade target",
          "[forward]") {
    const std::vector<Forward> fs{
        parse_forward("80:5000"),
        parse_forward("8080-8081:3000-3001", std::string_view("192.0.2.10")),
        parse_forward("9000:3000/udp", std::string_view("2001:db8::10")),
        parse_forward("9001:3000/udp", std::string_view("2001:db8::10")),
    };
    CHECK(texts(forward_elements(fs)) == std::vector<std::string>{
                                             "redirect tcp . 80 : 5000",
                                             "dnat4 tcp . 8080 : 192.0.2.10 . 3000",
                                             "dnat4 tcp . 8081 : 192.0.2.10 . 3001",
                                             "dnat6 udp . 9000 : 2001:db8::10 . 3000",
                                             "dnat6 udp . 9001 : 2001:db8::10 . 3000",
                                             "targets4 192.0.2.10 . tcp . 3000",
                                             "targets4 192.0.2.10 . tcp . 3001",
                                             "targets6 2001:db8::10 . udp . 3000",
                                         });
    CHECK(forward_elements({}).empty());
}

TEST_CASE("element bytes are what the kernel keeps: fields padded to 32 bits", "[forward]") {
    const auto e = port_element(parse_forward("8080:3000", std::string_view("192.0.2.10")), 8080);
    CHECK(e.set == ForwardSet::dnat4);
    CHECK(e.key == std::vector<std::uint8_t>{6, 0, 0, 0, 0x1f, 0x90, 0, 0});
    CHECK(e.data == std::vector<std::uint8_t>{192, 0, 2, 10, 0x0b, 0xb8, 0, 0});
    const auto r = port_element(parse_forward("80:5000/udp"), 80);
    CHECK(r.key == std::vector<std::uint8_t>{17, 0, 0, 0, 0, 80, 0, 0});
    CHECK(r.data == std::vector<std::uint8_t>{0x13, 0x88});
    const auto v6 = port_element(parse_forward("80:3000", std::string_view("2001:db8::10")), 80);
    CHECK(v6.data.size() == 20);
}

TEST_CASE("the proxy serves remote TCP forwards only, a route a port", "[forward]") {
    const std::vector<Forward> fs{
        parse_forward("80:5000"),
        parse_forward("9000:3000/udp", std::string_view("192.0.2.10")),
        parse_forward("8081-8082:3000-3001", std::string_view("2001:db8::10")),
        parse_forward("8080:3000", std::string_view("192.0.2.10")),
    };
    const auto routes = proxy_routes(fs);
    REQUIRE(routes.size() == 3);
    CHECK(route_text(routes[0]) == "8080=192.0.2.10:3000");
    CHECK(route_text(routes[2]) == "8082=[2001:db8::10]:3001");
    for (const auto& r : routes)
        CHECK(parse_route(route_text(r)) == r);
    CHECK_THROWS_AS(parse_route("8080=nowhere:1"), Error);
    CHECK_THROWS_AS(parse_route("0=192.0.2.1:1"), Error);
    CHECK(needs_ipv4_forwarding(fs));
    CHECK(needs_ipv6_forwarding(fs));
    CHECK_FALSE(needs_ipv4_forwarding({parse_forward("80:5000")}));
}
