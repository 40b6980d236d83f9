// fake-firewalld: firewalld's D-Bus API as far as portpub uses it, for the
// one case Debian 12's firewalld (1.3) cannot show: StrictForwardPorts=yes,
// a setting of firewalld 2.3 and later. It owns org.fedoraproject.FirewallD1
// on the system bus (a test's private one), answers the zone methods from
// memory, and serves the config property with the value it was given. On
// SIGUSR1 it does what a reload does to the runtime zone bindings (forgets
// them) and announces `Reloaded`, changing nothing in nftables: what the
// watcher's D-Bus match alone must notice.
//
//   fake-firewalld STRICT_FORWARD_PORTS    ("yes" or "no")
#include <signal.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>
#include <string>

namespace {

std::string strict;
volatile std::sig_atomic_t reload = 0;
std::map<std::string, std::string> zones;  // interface -> zone

int get_zone(sd_bus_message* m, void*, sd_bus_error*) {
    const char* interface = nullptr;
    if (int r = sd_bus_message_read(m, "s", &interface); r < 0) return r;
    return sd_bus_reply_method_return(m, "s", zones[interface].c_str());
}

int add_interface(sd_bus_message* m, void*, sd_bus_error*) {
    const char *zone = nullptr, *interface = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &zone, &interface); r < 0) return r;
    zones[interface] = zone;
    return sd_bus_reply_method_return(m, "s", zone);
}

int remove_interface(sd_bus_message* m, void*, sd_bus_error*) {
    const char *zone = nullptr, *interface = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &zone, &interface); r < 0) return r;
    zones.erase(interface);
    return sd_bus_reply_method_return(m, "s", zone);
}

int get_strict(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void*,
               sd_bus_error*) {
    return sd_bus_message_append(reply, "s", strict.c_str());
}

const sd_bus_vtable kZone[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("getZoneOfInterface", "s", "s", get_zone, 0),
    SD_BUS_METHOD("addInterface", "ss", "s", add_interface, 0),
    SD_BUS_METHOD("removeInterface", "ss", "s", remove_interface, 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable kConfig[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("StrictForwardPorts", "s", get_strict, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_VTABLE_END,
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fake-firewalld yes|no\n");
        return 2;
    }
    strict = argv[1];
    sd_bus* bus = nullptr;
    if (sd_bus_open_system(&bus) < 0 ||
        sd_bus_add_object_vtable(bus, nullptr, "/org/fedoraproject/FirewallD1",
                                 "org.fedoraproject.FirewallD1.zone", kZone, nullptr) < 0 ||
        sd_bus_add_object_vtable(bus, nullptr, "/org/fedoraproject/FirewallD1/config",
                                 "org.fedoraproject.FirewallD1.config", kConfig, nullptr) < 0 ||
        sd_bus_request_name(bus, "org.fedoraproject.FirewallD1", 0) < 0) {
        std::fprintf(stderr, "fake-firewalld: cannot serve on the system bus\n");
        return 1;
    }
    struct sigaction on_usr1 {};
    on_usr1.sa_handler = [](int) { reload = 1; };
    ::sigaction(SIGUSR1, &on_usr1, nullptr);  // no SA_RESTART: the wait returns
    for (;;) {
        if (reload) {
            reload = 0;
            zones.clear();
            if (sd_bus_emit_signal(bus, "/org/fedoraproject/FirewallD1",
                                   "org.fedoraproject.FirewallD1", "Reloaded", "") < 0)
                return 1;
        }
        int r = sd_bus_process(bus, nullptr);
        if (r < 0) return 1;
        if (r == 0)
            if (int w = sd_bus_wait(bus, 100000); w < 0 && w != -EINTR) return 1;
    }
}
