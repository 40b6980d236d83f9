// Fault injection for the crash tests: with PORTPUB_CRASH_AT=NAME in its
// environment, portpub kills itself with SIGKILL right after the step NAME,
// the way a runtime's timeout or an OOM kill would. The tests sweep every
// step and show that the next command, or `portpub gc`, leaves the machine
// clean or fully published, never half of either.
#pragma once

#include <cstdint>
#include <string_view>

namespace portpub {

enum class Step : std::uint8_t {
    // up
    up_pending_saved,      // the pending record is written; nothing else yet
    up_ip_forward,         // ip_forward is 1
    up_bridge,             // the bridge exists, addressed and up
    up_foreign_firewalls,  // the accepts in iptables' FORWARD, the firewalld zone
    up_veth,               // the veth pair and the container's address
    up_firewall,           // the map elements are in the kernel
    up_rewrite,            // the socket programs attached, the service map's entries added
    up_proxy_started,      // the proxy runs, its pid not yet in the record
    up_published,          // the record says published
    // down (and the teardown of an interrupted up)
    down_removing_saved,  // the record says removing; nothing else yet
    down_rewrite,         // the service map's entries are gone
    down_proxy_stopped,
    down_firewall,  // the map elements are gone
    down_veth,
    down_foreign_firewalls,  // the accepts and the zone taken back, with the last container
    down_bridge,
    down_ip_forward,
    down_record_removed,
    // restore (the watcher's repair), each reached only when it mended something
    restore_links,          // the bridge, its addresses and the veth are back
    restore_firewall,       // the table and the missing map elements are back
    restore_proxy_started,  // a new proxy runs, its pid not yet in the record
    restore_rewrite,        // the socket programs and the service map's entries are back
    restore_firewalls,      // the accepts and the zone beside portpub are back
};

struct StepName {
    Step step;
    std::string_view name;
};

inline constexpr StepName kSteps[] = {
    {Step::up_pending_saved, "up:pending-saved"},
    {Step::up_ip_forward, "up:ip-forward"},
    {Step::up_bridge, "up:bridge"},
    {Step::up_foreign_firewalls, "up:firewalls"},
    {Step::up_veth, "up:veth"},
    {Step::up_firewall, "up:firewall"},
    {Step::up_rewrite, "up:rewrite"},
    {Step::up_proxy_started, "up:proxy-started"},
    {Step::up_published, "up:published"},
    {Step::down_removing_saved, "down:removing-saved"},
    {Step::down_rewrite, "down:rewrite"},
    {Step::down_proxy_stopped, "down:proxy-stopped"},
    {Step::down_firewall, "down:firewall"},
    {Step::down_veth, "down:veth"},
    {Step::down_foreign_firewalls, "down:firewalls"},
    {Step::down_bridge, "down:bridge"},
    {Step::down_ip_forward, "down:ip-forward"},
    {Step::down_record_removed, "down:record-removed"},
    {Step::restore_links, "restore:links"},
    {Step::restore_firewall, "restore:firewall"},
    {Step::restore_proxy_started, "restore:proxy-started"},
    {Step::restore_rewrite, "restore:rewrite"},
    {Step::restore_firewalls, "restore:firewalls"},
};

inline constexpr const char* kCrashAtVariable = "PORTPUB_CRASH_AT";

// SIGKILLs this process when PORTPUB_CRASH_AT names `step`.
void crash_point(Step step);

}  // namespace portpub
