// The state directory: records saved, listed by id and removed; private, never wider than asked
// whatever the umask, and refused when others may write to it; host.json; unusable records set
// apart; a shared lock that needs no write access.
#include "portpub/state_store.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "portpub/error.hpp"
#include "test_support.hpp"

using namespace portpub;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/portpub-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("records are saved, listed by id and removed", "[store]") {
    TempDir tmp;
    StateStore store(tmp.path / "state");
    CHECK(store.load_all().usable.empty());  // no directory yet: nothing published
    auto lock = store.lock();
    auto web = test::publication("web", "10.77.0.2", {"8080:80"});
    auto db = test::publication("db", "10.77.0.3", {"5432:5432"});
    store.save(web);
    store.save(db);
    auto all = store.load_all().usable;
    REQUIRE(all.size() == 2);
    CHECK(all[0] == db);
    CHECK(all[1] == web);
    store.remove("db");
    store.remove("db");  // twice is fine
    CHECK(store.load_all().usable == std::vector<Publication>{web});
}

TEST_CASE("the state directory is private and records are 0600", "[store]") {
    TempDir tmp;
    StateStore store(tmp.path / "state");
    auto lock = store.lock();
    store.save(test::publication("web", "10.77.0.2", {"8080:80"}));
    struct stat st {};
    REQUIRE(::stat((tmp.path / "state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::stat((tmp.path / "state/containers/web.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // No temporary file is left next to the record.
    int files = 0;
    for (const auto& e : fs::directory_iterator(tmp.path / "state/containers"))
        files += e.is_regular_file();
    CHECK(files == 1);
}

TEST_CASE("the state directory and its parents are never wider than asked, whatever the umask",
          "[store]") {
    TempDir tmp;
    const auto old = ::umask(0);
    {
        StateStore store(tmp.path / "a/b/state");
        auto lock = store.lock();
        store.save(test::publication("web", "10.77.0.2", {"8080:80"}));
        HostState h;
        h.ip_forward_before = "0";
        store.save_host(h);
    }
    ::umask(old);
    auto mode = [&](const char* rel) {
        struct stat st {};
        REQUIRE(::stat((tmp.path / rel).c_str(), &st) == 0);
        return st.st_mode & 07777;
    };
    CHECK(mode("a") == 0755);
    CHECK(mode("a/b") == 0755);
    CHECK(mode("a/b/state") == 0700);
    CHECK(mode("a/b/state/containers") == 0700);
    CHECK(mode("a/b/state/lock") == 0600);
    CHECK(mode("a/b/state/host.json") == 0600);
    CHECK(mode("a/b/state/containers/web.json") == 0600);
}

TEST_CASE("a state directory others may write to is refused", "[store]") {
    TempDir tmp;
    fs::create_directory(tmp.path / "open");
    ::chmod((tmp.path / "open").c_str(), 0777);
    StateStore store(tmp.path / "open");
    CHECK_THROWS_WITH(store.lock(), Catch::Contains("may be written by other users (mode 0777)") &&
                                        Catch::Contains("--state-dir"));
    CHECK_FALSE(fs::exists(tmp.path / "open/containers"));
    ::chmod((tmp.path / "open").c_str(), 0755);  // read by others is fine
    CHECK_NOTHROW(StateStore(tmp.path / "open").lock());
}

TEST_CASE("host state round-trips and disappears when empty", "[store]") {
    TempDir tmp;
    StateStore store(tmp.path);
    auto lock = store.lock();
    HostState h;
    h.ip_forward_before = "0";
    h.bridges["portpub0"].created = true;
    h.bridges["portpub0"].address_added = true;
    h.bridges["portpub0"].iptables_accepts = true;
    h.bridges["portpub0"].firewalld_zone = "trusted";
    h.bridges["br-user"].address_added = true;
    h.bridges["br-user"].brought_up = true;
    h.bridges["br-user"].ip6tables_accepts = true;
    h.iptables_made = {true, true};
    h.ip6tables_made = {false, true};
    store.save_host(h);
    CHECK(store.load_host() == h);
    // What portpub made for its accepts keeps the state when nothing else does.
    HostState made_only;
    made_only.iptables_made.chain = true;
    store.save_host(made_only);
    CHECK(store.load_host() == made_only);
    store.save_host(HostState{});
    CHECK_FALSE(fs::exists(tmp.path / "host.json"));
    CHECK(store.load_host() == HostState{});
}

TEST_CASE("a record portpub cannot use is listed apart, and the others are read", "[store]") {
    TempDir tmp;
    StateStore store(tmp.path);
    auto lock = store.lock();
    store.save(test::publication("web", "10.77.0.2", {"8080:80"}));
    auto text = [](const Publication& p) { return to_record(p).dump(); };
    // Cut short, as a full disk or a crash of an editor leaves a file.
    const auto db = text(test::publication("db", "10.77.0.3", {"5432:5432"}));
    std::ofstream(tmp.path / "containers/db.json") << db.substr(0, db.size() / 2);
    // Another container's record under this name: the id steers which file
    // `down` removes.
    std::ofstream(tmp.path / "containers/other.json")
        << text(test::publication("app", "10.77.0.4", {"80"}));
    // Names portpub never gives: a path as the id, a host interface as its veth.
    auto planted = test::publication("x", "10.77.0.5", {"80"});
    auto j = to_record(planted);
    j["id"] = "../../../tmp/x";
    std::ofstream(tmp.path / "containers/planted.json") << j.dump();
    j = to_record(planted);
    j["host_veth"] = "ext0";
    std::ofstream(tmp.path / "containers/x.json") << j.dump();

    const auto records = store.load_all();
    REQUIRE(records.usable.size() == 1);
    CHECK(records.usable[0].id == "web");
    CHECK_FALSE(records.complete());
    REQUIRE(records.unusable.size() == 4);
    const auto file = [&](const char* name) { return (tmp.path / "containers" / name).string(); };
    CHECK(records.unusable[0].file == file("db.json"));
    CHECK_THAT(records.unusable[0].why, Catch::Contains("is not valid JSON"));
    CHECK(records.unusable[1].file == file("other.json"));
    CHECK_THAT(records.unusable[1].why,
               Catch::Contains("holds container id 'app', not that of its file name"));
    CHECK(records.unusable[2].file == file("planted.json"));
    CHECK_THAT(records.unusable[2].why, Catch::Contains("invalid container id '../../../tmp/x'"));
    CHECK(records.unusable[3].file == file("x.json"));
    CHECK_THAT(records.unusable[3].why,
               Catch::Contains("host_veth 'ext0' is not the veth portpub names for 10.77.0.5"));
    CHECK_THAT(records.unusable[3].advice(),
               Catch::EndsWith("portpub leaves it, and what it names, alone: move it away once "
                               "you know what it was"));
}

TEST_CASE("a shared lock needs no write access and no directory", "[store]") {
    TempDir tmp;
    StateStore absent(tmp.path / "never-made");
    { auto lock = absent.lock_shared(); }
    CHECK_FALSE(fs::exists(tmp.path / "never-made"));
    StateStore store(tmp.path / "state");
    { auto lock = store.lock(); }
    // Two readers at once: a shared lock does not wait for another.
    auto first = store.lock_shared();
    auto second = store.lock_shared();
    CHECK(store.load_all().usable.empty());
}
