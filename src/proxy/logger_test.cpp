// The proxy's log stays under its bound, with a full file moved to NAME.1, and its directory is
// closed to other users.
#include "portpub/logger.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

using namespace portpub;
namespace fs = std::filesystem;

TEST_CASE("the log stays under its bound: a full file moves to NAME.1", "[logger]") {
    char tmpl[] = "/tmp/portpub-log-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    const fs::path path = dir / "logs" / "web.log";
    {
        Logger log(path, 1000);
        for (int i = 0; i < 100; ++i)
            log.write("line " + std::to_string(i) + " of something worth logging");
    }
    REQUIRE(fs::exists(path));
    REQUIRE(fs::exists(path.string() + ".1"));
    CHECK(fs::file_size(path) <= 1000);
    CHECK(fs::file_size(path.string() + ".1") <= 1000);
    CHECK((fs::status(dir / "logs").permissions() & fs::perms::others_all) == fs::perms::none);
    fs::remove_all(dir);
}
