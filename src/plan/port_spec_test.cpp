// The -p grammar: every valid form parses, a host range with one container port picks from the
// range, and every malformed spec is an error that quotes it on one bounded line.
#include "portpub/port_spec.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "portpub/error.hpp"

using namespace portpub;

namespace {

struct Valid {
    const char* spec;
    const char* host_ip;        // "" = every address
    int host_first, host_last;  // 0 = random host port
    int container_first, container_last;
    Proto proto;
};

}  // namespace

TEST_CASE("every valid form of the -p grammar parses", "[port_spec]") {
    const Valid table[] = {
        {"80", "", 0, 0, 80, 80, Proto::tcp},
        {"80/tcp", "", 0, 0, 80, 80, Proto::tcp},
        {"53/udp", "", 0, 0, 53, 53, Proto::udp},
        {"9/sctp", "", 0, 0, 9, 9, Proto::sctp},
        {"80/TCP", "", 0, 0, 80, 80, Proto::tcp},
        {"8080:80", "", 8080, 8080, 80, 80, Proto::tcp},
        {"5353:53/udp", "", 5353, 5353, 53, 53, Proto::udp},
        {"0:80", "", 0, 0, 80, 80, Proto::tcp},
        {":80", "", 0, 0, 80, 80, Proto::tcp},
        {"65535:1", "", 65535, 65535, 1, 1, Proto::tcp},
        {"192.0.2.1:8080:80", "192.0.2.1", 8080, 8080, 80, 80, Proto::tcp},
        {"127.0.0.1::80", "127.0.0.1", 0, 0, 80, 80, Proto::tcp},
        {"0.0.0.0:8080:80/udp", "0.0.0.0", 8080, 8080, 80, 80, Proto::udp},
        {":8080:80", "", 8080, 8080, 80, 80, Proto::tcp},
        {"8000-8010:80-90", "", 8000, 8010, 80, 90, Proto::tcp},
        {"8000-8010:80", "", 8000, 8010, 80, 80, Proto::tcp},
        {"80-90", "", 0, 0, 80, 90, Proto::tcp},
        {"192.0.2.1::80-90/udp", "192.0.2.1", 0, 0, 80, 90, Proto::udp},
        {"1-65535:1-65535", "", 1, 65535, 1, 65535, Proto::tcp},
        {"8080-8080:80-80", "", 8080, 8080, 80, 80, Proto::tcp},
        {"[::1]:8080:80", "::1", 8080, 8080, 80, 80, Proto::tcp},
        {"[2001:db8::1]:8080:80", "2001:db8::1", 8080, 8080, 80, 80, Proto::tcp},
        {"[2001:db8::1]::80/udp", "2001:db8::1", 0, 0, 80, 80, Proto::udp},
        {"[::]:8000-8001:80-81", "::", 8000, 8001, 80, 81, Proto::tcp},
        {"08080:080", "", 8080, 8080, 80, 80, Proto::tcp},
        // Docker also takes these:
        {"80/", "", 0, 0, 80, 80, Proto::tcp},
        {"::1:8080:80", "::1", 8080, 8080, 80, 80, Proto::tcp},
        {"2001:db8::1:8080:80/udp", "2001:db8::1", 8080, 8080, 80, 80, Proto::udp},
        {"2001:db8::1::80", "2001:db8::1", 0, 0, 80, 80, Proto::tcp},
        {"[192.0.2.1]:8080:80", "192.0.2.1", 8080, 8080, 80, 80, Proto::tcp},
        {"::80", "", 0, 0, 80, 80, Proto::tcp},
    };
    for (const auto& row : table) {
        INFO("spec " << row.spec);
        auto s = parse_port_spec(row.spec);
        CHECK(s.text == row.spec);
        if (*row.host_ip) {
            REQUIRE(s.host_ip);
            CHECK(s.host_ip->str() == row.host_ip);
        } else {
            CHECK_FALSE(s.host_ip);
        }
        if (row.host_first) {
            REQUIRE(s.host);
            CHECK(s.host->first == row.host_first);
            CHECK(s.host->last == row.host_last);
        } else {
            CHECK_FALSE(s.host);
        }
        CHECK(s.container.first == row.container_first);
        CHECK(s.container.last == row.container_last);
        CHECK(s.proto == row.proto);
    }
}

TEST_CASE("a host range with one container port picks from the range", "[port_spec]") {
    CHECK(parse_port_spec("8000-8010:80").picks_from_range());
    CHECK_FALSE(parse_port_spec("8000-8010:80-90").picks_from_range());
    CHECK_FALSE(parse_port_spec("8080:80").picks_from_range());
    CHECK_FALSE(parse_port_spec("80").picks_from_range());
}

TEST_CASE("every malformed spec is a clear error that quotes it", "[port_spec]") {
    struct Bad {
        const char* spec;
        const char* says;
    };
    const Bad table[] = {
        {"", "empty spec"},
        {"65536:80", "host port 65536 is above 65535"},
        {"8080:65536", "container port 65536 is above 65535"},
        {"99999", "is above 65535"},
        {"123456:80", "is not a number"},
        {"0", "container port 0 is not allowed"},
        {"8080:0", "container port 0 is not allowed"},
        {"0-10:80-90", "host port 0 is not allowed"},
        {"8010-8000:80", "host port range 8010-8000 is reversed"},
        {"8000-8010:90-80", "container port range 90-80 is reversed"},
        {"8000-8010:80-85", "host ports 8000-8010 (11) and container ports 80-85 (6) differ"},
        {"8000:80-85", "host ports 8000 (1) and container ports 80-85 (6) differ"},
        {"80/icmp", "unknown protocol 'icmp'"},
        {"localhost:8080:80", "host address 'localhost' is not an IP address"},
        {"example.com:8080:80", "is not an IP address"},
        {"8080:", "empty container port"},
        {"192.0.2.1:8080:", "empty container port"},
        {"192.0.2.1:80", "is an address, not a host port"},
        {"[::1:8080:80", "missing ']'"},
        {"[::1]8080:80", "expected ':' after the bracketed address"},
        {"[::1]:80", "expected hostPort:containerPort"},
        {"[]:8080:80", "empty host address"},
        {"[nothost]:8080:80", "is not an IP address"},
        {"8080:80:90", "host address '8080' is not an IP address"},
        {"a:b", "host port 'a' is not a number"},
        {"80 ", "space"},
        {"-80", "empty container port"},
        {"80-", "empty container port"},
        {"+80", "is not a number"},
        {"8080::80", "host address '8080'"},
        {"1:2:3:4", "host address '1:2' is not an IP address"},
        {"[::1]:8080:80:90", "too many ':' after the host port"},
        {"::", "empty container port"},
    };
    for (const auto& row : table) {
        INFO("spec '" << row.spec << "'");
        try {
            parse_port_spec(row.spec);
            FAIL("accepted");
        } catch (const Error& e) {
            std::string msg = e.what();
            CHECK_THAT(msg, Catch::Contains(row.says));
            if (*row.spec) CHECK_THAT(msg, Catch::Contains(std::string("'") + row.spec));
            CHECK(msg.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("a 10,000-character spec gets a one-line, bounded message", "[port_spec]") {
    std::string huge(10000, '9');
    try {
        parse_port_spec(huge);
        FAIL("accepted");
    } catch (const Error& e) {
        std::string msg = e.what();
        CHECK(msg.size() < 400);
        CHECK_THAT(msg, Catch::Contains("10000 characters"));
    }
}

TEST_CASE("a spec with control characters gets a one-line message", "[port_spec]") {
    // Found by tests/fuzz/port_spec_fuzz.cpp: the message quoted them raw.
    for (const std::string spec : {"8080:80\n", "0-9.0.2.9:808\x10:80", "80\r/tcp", "\x1b[2J80"}) {
        try {
            parse_port_spec(spec);
            FAIL("accepted");
        } catch (const Error& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(std::none_of(msg.begin(), msg.end(),
                               [](unsigned char c) { return c < 0x20 || c == 0x7f; }));
            CHECK_THAT(msg, Catch::Contains("contains a space or control character"));
        }
    }
}
