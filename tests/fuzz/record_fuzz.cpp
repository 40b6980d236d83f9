// libFuzzer target: a record read back from the state directory (what `gc`,
// `down` and `check` act on). from_record accepts it, or rejects it with a
// one-line Error, which the command reports while leaving the record and all
// it names alone. What it accepts names only what portpub itself gives (a
// valid id, the veth portpub names after the address, addresses in their
// subnets), and writes back to the same record.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_check.hpp"
#include "portpub/error.hpp"
#include "portpub/naming.hpp"
#include "portpub/publication.hpp"

using namespace portpub;
using portpub::fuzz::accepted;
using portpub::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception&) {
        return 0;  // the store reports text that is not JSON before from_record sees it
    }
    Publication p;
    if (!accepted<Error>("from_record", [&] { p = from_record(j, "web.json"); })) return 0;
    constexpr std::string_view step = "from_record";
    // Every name that steers a path, a deletion or a message is portpub's.
    require(accepted<Error>("validate_id", [&] { validate_id(p.id); }), step,
            "accepted an invalid container id");
    require(accepted<Error>("validate_netns_path", [&] { validate_netns_path(p.netns); }), step,
            "accepted a namespace path portpub would refuse");
    require(accepted<Error>("validate_ifname",
                            [&] {
                                validate_ifname(p.network.bridge, "bridge");
                                validate_ifname(p.ifname, "ifname");
                            }),
            step, "accepted an interface name the kernel would refuse");
    require(!p.cni_network || accepted<Error>("validate_network_name",
                                              [&] { validate_network_name(*p.cni_network); }),
            step, "accepted a CNI network name portpub would refuse");
    require(!p.oci || printable(p.oci->bundle) == p.oci->bundle, step,
            "accepted a bundle path with control characters");
    require(p.host_veth.empty() || p.host_veth == host_veth_name(p.address), step,
            "accepted a veth name portpub does not give that address");
    require(p.network.subnet.contains(p.address), step, "accepted an address outside its subnet");
    require(!p.address6 || (p.network.subnet6 && p.network.subnet6->contains(*p.address6)), step,
            "accepted an IPv6 address outside its subnet");
    // Written again, it reads back the same.
    std::string text;
    if (!accepted<nlohmann::json::exception>("to_record", [&] { text = to_record(p).dump(); }))
        fuzz::bug("to_record", "cannot write back what from_record accepted");
    Publication again;
    require(accepted<Error>("from_record",
                            [&] { again = from_record(nlohmann::json::parse(text), "web.json"); }),
            "to_record", "wrote a record from_record refuses");
    require(again == p, "to_record", "the record does not read back the same");
    return 0;
}
