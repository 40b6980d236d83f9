// The proxy's log stays under its bound, with a full file's text moved to NAME.1, through the
// descriptors it opened at the start, and its directory is closed to other users.
#include "portpub/logger.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace portpub;
namespace fs = std::filesystem;

TEST_CASE("the log stays under its bound: a full file's text moves to NAME.1", "[logger]") {
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
    // the newest line is in NAME, the one before the last rotation in NAME.1
    std::ifstream now(path), before(path.string() + ".1");
    const std::string text((std::istreambuf_iterator<char>(now)), {});
    const std::string older((std::istreambuf_iterator<char>(before)), {});
    CHECK_THAT(text, Catch::Contains("line 99 of"));
    CHECK_THAT(older, Catch::EndsWith(" of something worth logging\n"));
    CHECK_THAT(text + older, Catch::Contains("line 98 of"));  // none lost at the rotation
    CHECK((fs::status(path).permissions() & ~fs::perms::owner_all) == fs::perms::none);
    CHECK((fs::status(path.string() + ".1").permissions() & ~fs::perms::owner_all) ==
          fs::perms::none);
    fs::remove_all(dir);
}

TEST_CASE("the log opens no file by name once started: rotation goes through its descriptors",
          "[logger]") {
    char tmpl[] = "/tmp/portpub-log-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    const fs::path path = dir / "logs" / "web.log";
    Logger log(path, 1000);
    log.write("first line");
    // Both names gone (as a proxy that may open no file would find them):
    // writing and rotating must recreate neither.
    fs::remove(path);
    fs::remove(path.string() + ".1");
    for (int i = 0; i < 100; ++i)
        log.write("line " + std::to_string(i) + " of something worth logging");
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(fs::exists(path.string() + ".1"));
    fs::remove_all(dir);
}
