// The imperative shell around the planner: up, down, ls, check, restore, gc.
// `up` applies a plan step by step and undoes every step if a later one
// fails; `down` removes what the record says, tolerating what is already
// gone. The host it changes comes in as a Host (host.hpp): the kernel's by
// default, fakes in publisher_test.cpp.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "portpub/host.hpp"
#include "portpub/kernel_host.hpp"
#include "portpub/planner.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

// Where records live unless --state-dir (or a CNI "stateDir") says otherwise.
inline constexpr const char* kDefaultStateDir = "/run/portpub";

struct DownRequest {
    std::optional<std::string> id;
    std::optional<std::string> netns;
    // A runtime's clean-up call (OCI poststop, CNI DEL) names a container
    // by id only; this says whether the publication found is the one it
    // means: nullopt when it is, else why not (then it is left alone).
    std::function<std::optional<std::string>(const Publication&)> only_if;
};

class Publisher {
  public:
    // On the kernel of the namespace it runs in.
    explicit Publisher(std::filesystem::path state_dir);
    // On `host`, which outlives the publisher.
    Publisher(std::filesystem::path state_dir, const Host& host);

    Publication up(const UpRequest& req);
    // Things `up` and `down` say once, for the user (not errors): what is
    // not served, records left alone, what could not be written.
    const std::vector<std::string>& notes() const { return notes_; }
    // The publication removed, or nullopt when nothing matched (not an error).
    std::optional<Publication> down(const DownRequest& req);
    // The records, those portpub cannot use apart (under a shared lock).
    Records list() const;
    // CNI CHECK: what of publication `id` the kernel lacks (its namespace,
    // veth, map elements, proxy...). Empty when whole; nullopt when there is
    // no record.
    std::optional<std::vector<std::string>> missing_parts(const std::string& id);

    // `portpub check`: every difference between the kernel and the records
    // (those of `id` only, when given), one line each; empty when they agree.
    std::vector<std::string> differences_from_records(const std::optional<std::string>& id);
    // `portpub gc`: finishes interrupted commands, removes the publications
    // whose namespace is gone and whatever no record accounts for (proxies,
    // map elements, veths); says what it removed, one line each.
    std::vector<std::string> gc();
    // `portpub restore`: re-creates from the records what is missing in the
    // kernel (after `nft flush ruleset`, a firewalld reload, a killed proxy).
    struct Restored {
        std::vector<std::string> done;    // one line per publication mended
        std::vector<std::string> failed;  // one line per publication that could not be
    };
    Restored restore();

  private:
    std::optional<Publication> down_locked(const DownRequest& req);
    std::vector<std::string> gc_locked();
    // `up`'s last step, under the state lock: the watcher, unless --no-watch.
    Publication watched(Publication pub, const UpRequest& req);
    // After the last `down` or a `gc` that leaves nothing: the watcher `up`
    // started exits (watcher_process.hpp).
    void settle_watcher_if_idle();

    // The checks `up` can make before it changes anything: the table's
    // owner, the subnets, the bridge, the container's side. `replaced`: the
    // publication of the same id that `up` is about to take down, or null;
    // `others` and `host` tell what its teardown will take with it. Returns
    // what it read of the firewalls beside portpub (a firewalld that would
    // reject the published traffic refuses here), with the notes of what
    // they drop.
    ForeignFirewalls preflight(const Publication& pub, const Netns& ns, const Publication* replaced,
                               const std::vector<Publication>& others, const HostState& host);
    Publication apply(Publication pub, const std::vector<Publication>& others, const Netns& ns,
                      HostState& host, const ForeignFirewalls& seen, const std::string& cgroup);
    // Takes `pub` apart and removes its record; `remaining` stay.
    void teardown(const Publication& pub, const std::vector<Publication>& remaining,
                  HostState& host);
    // Tears down the records an interrupted up or down left (under the lock,
    // a record not `published` belongs to a process that died) and takes
    // them out of `existing`; returns them.
    std::vector<Publication> finish_interrupted(std::vector<Publication>& existing,
                                                HostState& host);
    // restore's one nftables batch, filled publication by publication, and
    // what it knew of the table before. Should it fail, each publication's
    // part is tried alone.
    struct RestoreBatch {
        FirewallChange change;
        bool table = false, chains_differ = false;
        bool table_named = false, chains_named = false;  // said once, by the first
        std::map<NatMap, std::map<std::vector<std::uint8_t>, NatElement>> held;
    };
    // restore's first part for `pub`: forwarding, bridge, veth, the sockets
    // of a proxy that died (in `proxy_fds`), and in `own` what the table
    // lacks of it (`added`: map elements), for the batch. Returns what it
    // mended.
    std::vector<std::string> restore_links(Publication& pub, HostState& host, RestoreBatch& batch,
                                           FirewallChange& own, std::optional<ProxyFds>& proxy_fds,
                                           bool& added);
    // The socket programs and the service map's entries of `pub`, where
    // they are missing.
    // `held`: the service map's entries, read on first use and kept in step.
    std::vector<std::string> restore_rewrite(const Publication& pub, HostState& host,
                                             std::optional<std::vector<RewriteEntry>>& held);
    // Its part after the batch: conntrack, the new proxy and its record.
    std::vector<std::string> restore_proxy(Publication& pub, std::optional<ProxyFds>& proxy_fds,
                                           bool added);
    // A write to the state directory that taking things down can do without:
    // on a full or read-only disk the kernel's side still goes, and a note
    // says what was not written (`otherwise`).
    void write_or_note(const std::function<void()>& write, const std::string& otherwise);

    void add_notes(const UpRequest& req, const Publication& pub);
    // The usable records; those that are not go to unusable_, for this
    // command to report. While there is one, nothing shared is taken down
    // (the table, a bridge, forwarding) and nothing no record names is
    // removed: it may be that record's container's.
    std::vector<Publication> load_records();

    StateStore store_;
    std::unique_ptr<KernelHost> kernel_;  // the default host, when no other was given
    Host host_;
    std::vector<std::string> notes_;
    std::vector<UnusableRecord> unusable_;
};

}  // namespace portpub
