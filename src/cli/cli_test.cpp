// The help texts: each command's fits one 80x24 screen, ends with an example and names every
// option with its default; help for a command that does not exist is a usage error.
#include "portpub/cli.hpp"

#include <catch2/catch.hpp>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Output {
    int status;
    std::string text;
};

// run_cli with std::cout captured; help never reaches the kernel.
Output run(std::vector<std::string> args) {
    args.insert(args.begin(), "portpub");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    std::ostringstream out;
    auto* const saved = std::cout.rdbuf(out.rdbuf());
    const int status = portpub::run_cli(static_cast<int>(argv.size()), argv.data());
    std::cout.rdbuf(saved);
    return {status, out.str()};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// Fits an 80x24 terminal, and ends with "Example:" and indented command lines.
void check_screen(const std::vector<std::string>& args) {
    const auto out = run(args);
    INFO(out.text);
    REQUIRE(out.status == 0);
    const auto lines = lines_of(out.text);
    CHECK(lines.size() <= 24);
    for (const auto& line : lines) {
        INFO(line);
        CHECK(line.size() <= 80);
    }
    auto example = lines.size();
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].rfind("Example", 0) == 0) example = i;
    REQUIRE(example + 1 < lines.size());
    for (auto i = example + 1; i < lines.size(); ++i) {
        INFO(lines[i]);
        CHECK(lines[i].rfind("  ", 0) == 0);
    }
    CHECK(out.text.find("portpub", out.text.find("Example")) != std::string::npos);
}

}  // namespace

TEST_CASE("portpub --help and every command's help fit one screen and end with an example") {
    check_screen({"--help"});
    check_screen({"help"});
    for (const char* command :
         {"up", "down", "ls", "check", "restore", "gc", "oci-hook", "forward", "version"}) {
        INFO(command);
        check_screen({command, "--help"});
        check_screen({"help", command});
    }
    check_screen({"forward", "ls", "--help"});
    check_screen({"forward", "rm", "--help"});
    check_screen({"forward", "apply", "--help"});
}

TEST_CASE("every option of a command is in its help, with its default") {
    const auto up = run({"up", "--help"}).text;
    for (const char* option :
         {"-p, --publish SPEC", "--netns PATH", "--id ID", "--bridge NAME", "--subnet CIDR",
          "--ipv6", "--subnet6 CIDR", "--ifname NAME", "--no-proxy", "--no-reserve",
          "--udp-timeout SECONDS", "--json", "--state-dir DIR"}) {
        INFO(option);
        CHECK(up.find(option) != std::string::npos);
    }
    CHECK(up.find("(default: portpub0)") != std::string::npos);
    CHECK(up.find("(default: 10.77.0.0/16)") != std::string::npos);
    CHECK(up.find("(default: /run/portpub)") != std::string::npos);
    const auto forward = run({"forward", "--help"}).text;
    CHECK(forward.find("(default: /etc/portpub/forwards.json)") != std::string::npos);
    CHECK(run({"help", "down"}).text == run({"down", "--help"}).text);
}

TEST_CASE("help of a command that does not exist is a usage error") {
    CHECK(run({"help", "nosuch"}).status == 2);
    CHECK(run({"help", "up", "extra"}).status == 2);
    CHECK(run({"help", "help"}).status == 0);
}

TEST_CASE("portpub with no arguments prints the help and exits 2") {
    const auto out = run({});
    CHECK(out.status == 2);
    CHECK(out.text.rfind("Usage: portpub", 0) == 0);
}
