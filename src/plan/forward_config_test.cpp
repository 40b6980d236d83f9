// Forward specs and the forward file: local and remote forwards parsed, bad specs and files
// refused with the value and what to write, the file read back as written, and a host port
// claimed twice or published by a container refused, naming both.
#include "portpub/forward_config.hpp"

#include <catch2/catch.hpp>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a forward spec is a host port to a target port, local or remote", "[forward]") {
    auto local = parse_forward("80:5000");
    CHECK(local.proto == Proto::tcp);
    CHECK(local.host == PortRange{80, 80});
    CHECK(local.target == PortRange{5000, 5000});
    CHECK_FALSE(local.remote());
    CHECK(local.publish() == "80:5000/tcp");
    CHECK(local.describe() == "80/tcp -> local port 5000");

    auto remote = parse_forward("8080:3000/udp", std::string_view("192.0.2.10"));
    CHECK(remote.remote());
    CHECK(remote.name() == "8080:3000/udp --to 192.0.2.10");
    CHECK(remote.describe() == "8080/udp -> 192.0.2.10:3000");

    auto v6 = parse_forward("8000-8002:3000-3002", std::string_view("[2001:db8::10]"));
    CHECK(v6.to->str() == "2001:db8::10");
    CHECK(v6.target_text(8001) == "[2001:db8::10]:3001");
}

TEST_CASE("bad forward specs are refused with the value and what to write", "[forward]") {
    CHECK_THAT(error_of([] { parse_forward("5000"); }),
               Catch::Contains("'5000'") && Catch::Contains("needs a host port"));
    CHECK_THAT(error_of([] { parse_forward("192.0.2.1:80:5000"); }),
               Catch::Contains("every address") && Catch::Contains("192.0.2.1"));
    CHECK_THAT(error_of([] { parse_forward("8000-8010:80"); }), Catch::Contains("one to one"));
    CHECK_THAT(error_of([] { parse_forward("80:80"); }), Catch::Contains("to itself"));
    CHECK_THAT(error_of([] { parse_forward("80:x"); }), Catch::Contains("'80:x'"));
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("db.example")); }),
               Catch::Contains("'db.example'") && Catch::Contains("not a host name"));
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("127.0.0.1")); }),
               Catch::Contains("leave --to out"));
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("0.0.0.0")); }),
               Catch::Contains("unicast"));
    // Addresses that name no one machine, or name it only half.
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("255.255.255.255")); }),
               Catch::Contains("unicast"));
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("fe80::1")); }),
               Catch::Contains("link-local") && Catch::Contains("interface"));
    CHECK_THAT(error_of([] { parse_forward("80:3000", std::string_view("::ffff:192.0.2.2")); }),
               Catch::Contains("write it as 192.0.2.2"));
    // The same port to another machine is fine.
    CHECK(parse_forward("80:80", std::string_view("192.0.2.10")).remote());
}

TEST_CASE("the forward file round-trips and an empty file has no forwards", "[forward]") {
    std::vector<Forward> fs{parse_forward("80:5000"),
                            parse_forward("8080:3000/udp", std::string_view("2001:db8::10"))};
    CHECK(parse_forward_file(forward_file_text(fs), "f.json") == fs);
    CHECK(parse_forward_file("", "f.json").empty());
    CHECK(parse_forward_file(" \n", "f.json").empty());
    CHECK(parse_forward_file(R"({"forwards":[]})", "f.json").empty());
}

TEST_CASE("a bad forward file names the file, the entry and the fault", "[forward]") {
    auto err = [](const char* text) {
        return error_of([&] { parse_forward_file(text, "/etc/portpub/forwards.json"); });
    };
    CHECK_THAT(err("{"),
               Catch::Contains("/etc/portpub/forwards.json") && Catch::Contains("not valid JSON"));
    CHECK_THAT(err("[]"), Catch::Contains("\"forwards\" array"));
    CHECK_THAT(err(R"({"forwards":[],"extra":1})"), Catch::Contains("unknown field 'extra'"));
    CHECK_THAT(err(R"({"forwards":[{"publish":"80:5000"},{"publish":"90"}]})"),
               Catch::Contains("forward 2") && Catch::Contains("'90'"));
    CHECK_THAT(err(R"({"forwards":[{"publish":"80:5000","too":"x"}]})"),
               Catch::Contains("forward 1") && Catch::Contains("'too'"));
    CHECK_THAT(err(R"({"forwards":[{"publish":"80:5000","to":5}]})"),
               Catch::Contains("\"to\" must be a string"));
    CHECK_THAT(err(R"({"forwards":[{"publish":8080}]})"), Catch::Contains("\"publish\" string"));
}

TEST_CASE("two forwards of one host port are refused, naming both", "[forward]") {
    const auto e = error_of([] {
        parse_forward_file(
            R"({"forwards":[{"publish":"8000-8010:3000-3010"},{"publish":"8005:4000","to":"192.0.2.9"}]})",
            "f.json");
    });
    CHECK_THAT(e, Catch::Contains("'8000-8010:3000-3010/tcp'") &&
                      Catch::Contains("'8005:4000/tcp --to 192.0.2.9'") &&
                      Catch::Contains("8005/tcp"));
    // Another protocol is another port.
    CHECK(parse_forward_file(R"({"forwards":[{"publish":"53:5353/udp"},{"publish":"53:5353"}]})",
                             "f.json")
              .size() == 2);
}

TEST_CASE("a forward of a port a container publishes is refused, naming it", "[forward]") {
    Mapping web{IpAddress::parse("192.0.2.1"), Proto::tcp, 8080, 80, 1};
    const std::vector<PublishedPort> published{{"web1", web}};
    const auto e =
        error_of([&] { check_container_conflicts({parse_forward("8080:3000")}, published); });
    CHECK_THAT(e, Catch::Contains("host port 8080/tcp is already published by container web1") &&
                      Catch::Contains("portpub down --id web1"));
    CHECK_NOTHROW(check_container_conflicts({parse_forward("8080:3000/udp")}, published));
    CHECK_NOTHROW(check_container_conflicts({parse_forward("8081:3000")}, published));
}

TEST_CASE("forward_holding finds the forward of a host port", "[forward]") {
    const std::vector<Forward> fs{parse_forward("8000-8010:3000-3010")};
    CHECK(forward_holding(fs, Proto::tcp, 8005) == &fs[0]);
    CHECK(forward_holding(fs, Proto::udp, 8005) == nullptr);
    CHECK(forward_holding(fs, Proto::tcp, 8011) == nullptr);
}
