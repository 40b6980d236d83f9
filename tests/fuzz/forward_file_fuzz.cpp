// libFuzzer target: the forward file (/etc/portpub/forwards.json), which
// `forward apply` makes the kernel's truth. parse_forward_file accepts it, or
// rejects it with a one-line Error naming the file and the entry. What it
// accepts forwards no port twice, sends remote forwards to unicast addresses
// of one machine, and writes back to the same forwards.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "portpub/error.hpp"
#include "portpub/forward_config.hpp"

using namespace portpub;
using portpub::fuzz::accepted;
using portpub::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<Forward> forwards;
    if (!accepted<Error>("parse_forward_file",
                         [&] { forwards = parse_forward_file(text, "forwards.json"); }))
        return 0;
    constexpr std::string_view step = "parse_forward_file";
    require(accepted<Error>("check_overlaps", [&] { check_overlaps(forwards, ""); }), step,
            "accepted two forwards of one host port");
    for (const auto& f : forwards) {
        require(f.host.size() == f.target.size(), step, "accepted ports that are not one to one");
        if (!f.to) continue;
        const auto& a = *f.to;
        require(!a.is_unspecified() && !a.is_loopback() && unmapped(a) == a, step,
                "accepted a --to address that is no other machine's");
        require(a.is_v4()
                    ? a.data()[0] < 224
                    : a.data()[0] != 0xff && !(a.data()[0] == 0xfe && (a.data()[1] & 0xc0) == 0x80),
                step, "accepted a multicast, broadcast or link-local --to address");
    }
    std::vector<Forward> again;
    require(accepted<Error>(
                "parse_forward_file",
                [&] { again = parse_forward_file(forward_file_text(forwards), "forwards.json"); }),
            "forward_file_text", "wrote a file parse_forward_file refuses");
    require(again == forwards, "forward_file_text", "the file does not read back the same");
    return 0;
}
