// firewalld's D-Bus API (org.fedoraproject.FirewallD1) through sd-bus. Every
// change is a runtime one (zone.addInterface), never a permanent one, so that
// nothing portpub does outlives firewalld's next reload or its publications.
// Calls time out after 10 s: a firewalld that hangs fails the command, and
// does not hang a runtime's hook.
#include "firewalld.hpp"

#include <systemd/sd-bus.h>

#include <memory>

#include "portpub/error.hpp"

namespace portpub {

namespace {

constexpr const char* kService = "org.fedoraproject.FirewallD1";
constexpr const char* kPath = "/org/fedoraproject/FirewallD1";
constexpr const char* kZoneInterface = "org.fedoraproject.FirewallD1.zone";
constexpr std::uint64_t kTimeoutUs = 10'000'000;

struct ErrorFree {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    ~ErrorFree() { sd_bus_error_free(&e); }
};
struct MessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

std::string why(const ErrorFree& err, int r) {
    if (err.e.message) return err.e.message;
    if (err.e.name) return err.e.name;
    return errno_text(-r);
}

}  // namespace

FirewalldBus::~FirewalldBus() {
    if (bus_) sd_bus_flush_close_unref(bus_);
}

sd_bus* FirewalldBus::bus() {
    if (!tried_) {
        tried_ = true;
        sd_bus* b = nullptr;
        if (sd_bus_open_system(&b) >= 0) {
            sd_bus_set_method_call_timeout(b, kTimeoutUs);
            bus_ = b;
        }
    }
    return bus_;
}

bool FirewalldBus::running() {
    sd_bus* b = bus();
    if (!b) return false;
    ErrorFree err;
    sd_bus_message* reply = nullptr;
    int r =
        sd_bus_call_method(b, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "NameHasOwner", &err.e, &reply, "s", kService);
    Message owned(reply);
    if (r < 0) return false;
    int has = 0;
    if (sd_bus_message_read(reply, "b", &has) < 0) return false;
    return has != 0;
}

std::string FirewalldBus::zone_of(const std::string& interface) {
    ErrorFree err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus(), kService, kPath, kZoneInterface, "getZoneOfInterface", &err.e,
                               &reply, "s", interface.c_str());
    Message owned(reply);
    if (r < 0) throw Error("firewalld: cannot read the zone of " + interface + ": " + why(err, r));
    const char* zone = nullptr;
    if (sd_bus_message_read(reply, "s", &zone) < 0 || !zone)
        throw Error("firewalld: an unreadable answer for the zone of " + interface);
    return zone;
}

void FirewalldBus::add_interface(const std::string& zone, const std::string& interface) {
    ErrorFree err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus(), kService, kPath, kZoneInterface, "addInterface", &err.e,
                               &reply, "ss", zone.c_str(), interface.c_str());
    Message owned(reply);
    if (r < 0)
        throw Error("firewalld: cannot bind " + interface + " to zone " + zone +
                    " at runtime: " + why(err, r));
}

void FirewalldBus::remove_interface(const std::string& zone, const std::string& interface) {
    // Bound elsewhere, or no longer (a reload forgets runtime bindings): not ours to take out.
    if (zone_of(interface) != zone) return;
    ErrorFree err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus(), kService, kPath, kZoneInterface, "removeInterface", &err.e,
                               &reply, "ss", zone.c_str(), interface.c_str());
    Message owned(reply);
    if (r < 0)
        throw Error("firewalld: cannot take " + interface + " out of zone " + zone + ": " +
                    why(err, r) + "; run firewall-cmd --zone=" + zone +
                    " --remove-interface=" + interface + ", then the command again");
}

bool FirewalldBus::strict_forward_ports() {
    constexpr const char* path = "/org/fedoraproject/FirewallD1/config";
    constexpr const char* interface = "org.fedoraproject.FirewallD1.config";
    // firewalld before 2.3 has no such property: an error, and not strict. Its
    // settings are strings ("yes"); a boolean is read too.
    {
        ErrorFree err;
        char* value = nullptr;
        if (sd_bus_get_property_string(bus(), kService, path, interface, "StrictForwardPorts",
                                       &err.e, &value) >= 0) {
            std::unique_ptr<char, decltype(&::free)> owned(value, &::free);
            const std::string v = value ? value : "";
            return v == "yes" || v == "true";
        }
    }
    ErrorFree err;
    int value = 0;
    if (sd_bus_get_property_trivial(bus(), kService, path, interface, "StrictForwardPorts", &err.e,
                                    'b', &value) >= 0)
        return value != 0;
    return false;
}

}  // namespace portpub
