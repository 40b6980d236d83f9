// The steps on the host that `up`, `down` and the repairs share (private to
// the publish folder): the bridge made and written down, the forwarding
// sysctls turned on and put back, and the undo list of an `up` that fails.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "portpub/error.hpp"
#include "portpub/host.hpp"
#include "portpub/host_state.hpp"
#include "portpub/state_store.hpp"

namespace portpub {

// The undo actions of the steps `up` took so far. When a later step fails,
// they run newest first, and each that fails too becomes part of the error
// `up` returns (the CNI error JSON carries it), not a line on stderr alone.
class Rollback {
  public:
    void add(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
    // Runs every undo action, newest first; what failed, one message each.
    std::vector<std::string> run() {
        std::vector<std::string> failed;
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception& e) {
                failed.emplace_back(e.what());
            }
        }
        steps_.clear();
        return failed;
    }

  private:
    std::vector<std::function<void()>> steps_;
};

// Runs one step of `up`; an error from it gains the step's name.
template <class F>
void step(const std::string& name, F&& f) {
    try {
        f();
    } catch (const Error& e) {
        throw Error(name + ": " + e.what());
    }
}

// `all` but the publication `id`.
std::vector<Publication> without(const std::vector<Publication>& all, const std::string& id);

// The bridge (made, or an existing one brought up and addressed). What it
// will change is written to the host state first, so that a crash half way
// leaves a record of it; with `rollback`, its undo steps are added there.
void make_bridge(const Network& net, Links& links, HostState& host, StateStore& store,
                 Rollback* rollback);

// Lets `net`'s traffic through the firewalls beside portpub, as `seen` shows
// them: portpub's accepts in iptables-nft's FORWARD (and ip6tables' with an
// IPv6 subnet) where they are missing, and the bridge bound to firewalld's
// trusted zone at runtime where it is in none. Each is written to the host
// state before it is made (the bridge's entry must be there: make_bridge);
// with `rollback`, its undo goes there. Returns what it added, a phrase each.
std::vector<std::string> pass_foreign_firewalls(const Network& net, const ForeignFirewalls& seen,
                                                ForeignFirewallCommands& fw, HostState& host,
                                                StateStore& store, Rollback* rollback);

// Takes back what the host state says portpub added for `bridge` to the
// firewalls beside it, then the table and chain it made for its accepts when
// no other bridge has any. Changes the host state; the caller saves it.
void withdraw_foreign_firewalls(const std::string& bridge, ForeignFirewallCommands& fw,
                                HostState& host);

// A port of `bridge` that portpub did not make (its veths have names of
// portpub's): a bridge with one is someone else's now, whatever host.json
// says, and is not deleted.
std::optional<std::string> foreign_port(Links& links, const std::string& bridge);

// A forwarding sysctl portpub turns on and puts back (not `portpub forward`).
struct ForwardingSysctl {
    const char* key;
    const char* name;
    std::optional<std::string> HostState::*before;
};
extern const ForwardingSysctl kForward4, kForward6;

// Forwarding on for IPv4, and for IPv6 with `ipv6`, each earlier value
// written down first. Returns the settings changed, with their earlier values.
// With the first value written down, the other programs' bridges then in
// use (see HostState::bridges_before_forwarding).
std::vector<std::pair<const ForwardingSysctl*, std::string>> turn_ip_forwarding_on(
    Sysctls& sysctls, Links& links, HostState& host, StateStore& store, bool ipv6);

// Puts back the forwarding settings that neither a record of `remaining`, a
// remote forward (portpub forward --to), nor a bridge of another program that
// came with ports since portpub turned forwarding on (Docker's docker0) needs;
// says what it did. What it keeps for another program is forgotten, with a
// line in `kept`. A failed save of the host state stops nothing: `saved`
// turns false.
std::vector<std::string> put_ip_forwarding_back(Sysctls& sysctls, Links& links, HostState& host,
                                                StateStore& store,
                                                const std::vector<Publication>& remaining,
                                                bool& saved, std::vector<std::string>& kept);

// The socket programs that rewrite loopback, attached at `cgroup` ("": the
// cgroup v2 root) unless they are; the cgroup goes to the host state first.
// nullopt when they serve, else why the kernel cannot rewrite here (then
// nothing is left of the attempt). Programs attached at another cgroup than
// the one asked for are an Error. With `rollback`, the undo detaches what
// this call attached.
std::optional<std::string> attach_rewriter(const std::string& cgroup, Rewriter& rewriter,
                                           HostState& host, StateStore& store, Rollback* rollback);

// Unpins the programs and forgets their cgroup when no publication of
// `remaining` is rewritten (and every record could be read: `shared`
// false), if the host state says portpub attached them: programs pinned by
// a portpub of another namespace are that one's. Changes the host state;
// the caller saves it. Returns whether it detached them.
bool detach_rewriter_if_unused(Rewriter& rewriter, HostState& host,
                               const std::vector<Publication>& remaining, bool shared);

// "an up of it was interrupted", or "a down ...", for a record not published.
std::string interrupted(const Publication& p);

}  // namespace portpub
