// The host as the publisher changes it, one narrow interface a part: the
// firewall (its command and its queries), the firewalls beside it, the
// links, the proxies, the kernel settings, the namespaces, conntrack, what
// it reads of ports and privileges, the watcher, and the
// socket programs. The publisher is handed a Host
// (KernelHost for the real one), so that the order of its steps and its
// rollback are tested with fakes (publisher_test.cpp), as ninja's
// DiskInterface is "abstract so it can be mocked out for tests".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "portpub/firewall.hpp"
#include "portpub/foreign_firewalls.hpp"
#include "portpub/links.hpp"
#include "portpub/loopback_rewrite.hpp"
#include "portpub/netns.hpp"
#include "portpub/port_allocator.hpp"
#include "portpub/process_id.hpp"
#include "portpub/proxy_process.hpp"
#include "portpub/proxy_sockets.hpp"
#include "portpub/publication.hpp"

namespace portpub {

class Proxies {
  public:
    virtual ~Proxies() = default;
    // The sockets of `p`'s proxy, bound now so that a port in use fails here.
    virtual ProxyFds open_sockets(const Publication& p) = 0;
    // Starts `p`'s proxy with those sockets; returns once it is ready.
    virtual ProcessId start(const Publication& p, ProxyFds& fds) = 0;
    virtual void stop(const ProcessId& id) = 0;  // nothing when it is gone
    virtual bool running(const ProcessId& id) = 0;
    // The proxies running for this state directory, each with its id.
    virtual std::vector<FoundProxy> find() = 0;
    virtual void remove_log(const std::string& id) = 0;
};

// Kernel settings by /proc/sys key ("net/ipv4/ip_forward").
class Sysctls {
  public:
    virtual ~Sysctls() = default;
    virtual std::optional<std::string> read(const std::string& key) = 0;
    virtual void write(const std::string& key, const std::string& value) = 0;
};

class Namespaces {
  public:
    virtual ~Namespaces() = default;
    // Throws Error when the path names no network namespace portpub may use.
    virtual Netns open(const std::string& path) = 0;
    // Whether the namespace file `p` names still holds that namespace.
    virtual bool alive(const Publication& p) = 0;
};

class Conntrack {
  public:
    virtual ~Conntrack() = default;
    // Deletes the entries of clients of `published`'s UDP ports; a note for
    // the user when it could not.
    virtual std::optional<std::string> flush_udp(const std::vector<Mapping>& published) = 0;
};

// What the publisher reads of the host before it plans.
class HostProbe {
  public:
    virtual ~HostProbe() = default;
    // Throws Error naming the capabilities portpub lacks.
    virtual void require_capabilities() = 0;
    virtual HostPortFacts port_facts() = 0;
    virtual bool has_sctp() = 0;
};

// The watcher of the state directory (watcher_process.hpp).
class Watchers {
  public:
    virtual ~Watchers() = default;
    // Starts one unless one runs; nullopt when one watches, else why none does.
    virtual std::optional<std::string> start() = 0;
    // When nothing may be left to watch: a watcher `up` started looks, and
    // exits if so. Called without the state lock.
    virtual void settle() = 0;
};

// The socket programs that rewrite loopback connections in the kernel
// (sock_rewrite.hpp), pinned so that they outlive the command.
class Rewriter {
  public:
    virtual ~Rewriter() = default;
    // Where they attach unless --cgroup says: the cgroup v2 root. Throws
    // Error when there is none.
    virtual std::string default_cgroup() = 0;
    // Throws Error saying why the kernel cannot rewrite here; nothing is left.
    virtual void attach(const std::string& cgroup) = 0;
    virtual bool attached() = 0;
    virtual std::vector<std::string> missing() = 0;  // of the pinned links and map
    // Their ports go where they say, over whatever held them (overlay).
    virtual void add(const std::vector<RewriteEntry>& entries) = 0;
    // Their ports are rewritten no more (uncovered); gone ones are fine.
    virtual void remove(const std::vector<RewriteEntry>& entries) = 0;
    // What is rewritten, port by port, as joined runs.
    virtual std::vector<RewriteEntry> entries() = 0;
    virtual void detach() = 0;  // unpins all; nothing pinned is fine
};

struct Host {
    FirewallCommand& firewall;
    FirewallView& tables;
    ForeignFirewallCommands& foreign;  // the firewalls beside portpub
    Links& links;
    Proxies& proxies;
    Sysctls& sysctls;
    Namespaces& namespaces;
    Conntrack& conntrack;
    HostProbe& probe;
    Watchers& watchers;
    Rewriter& rewriter;
};

}  // namespace portpub
