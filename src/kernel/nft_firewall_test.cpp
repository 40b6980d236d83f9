// The rules portpub installs, as libnftnl encodes them, compared with
// tests/golden/base_rules.txt: a change to any expression, register or
// verdict shows up here, without root, for a reviewer to read. After a
// change meant to be made: PORTPUB_UPDATE_GOLDEN=1 kernel_tests, then
// review the file's diff before committing it.
#include "portpub/nft_firewall.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace portpub;

TEST_CASE("the base rules are encoded as the golden file says", "[nft]") {
    const std::string golden = std::string(PORTPUB_SOURCE_DIR) + "/tests/golden/base_rules.txt";
    const std::string now = base_rules_text();
    if (std::getenv("PORTPUB_UPDATE_GOLDEN")) std::ofstream(golden) << now;
    std::ifstream in(golden);
    REQUIRE(in);
    std::stringstream kept;
    kept << in.rdbuf();
    INFO("after an intended change: PORTPUB_UPDATE_GOLDEN=1 kernel_tests, and review the diff");
    CHECK(now == kept.str());
    // What the reviews rely on: loopback never DNATed, and the isolation
    // chain ends in a drop.
    CHECK_THAT(now, Catch::Contains("chain prerouting"));
    CHECK_THAT(now, Catch::Contains("[ cmp eq reg 1 0x0000007f ]"));  // 127.0.0.0/8
    CHECK_THAT(now, Catch::Contains("[ immediate reg 0 drop ]"));
}
