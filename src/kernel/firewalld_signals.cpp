// Two matches on the system bus through sd-bus: firewalld's `Reloaded`
// signal, and NameOwnerChanged for org.fedoraproject.FirewallD1. The bus
// connection is the watcher's own; sd_bus_process dispatches what came to
// the matches' callbacks, which only note that something happened.
// `Reloaded` is matched by path, interface and member, not by sender: the
// signal carries firewalld's unique name (":1.42"), and sd-bus compares a
// sender given as the well-known name with it and lets nothing through.
// Another process could send such a signal; it would cost one repair.
#include "portpub/firewalld_signals.hpp"

#include <systemd/sd-bus.h>

namespace portpub {

struct FirewalldSignals::Impl {
    sd_bus* bus = nullptr;
    bool seen = false;
    ~Impl() {
        if (bus) sd_bus_flush_close_unref(bus);
    }
};

namespace {

int noted(sd_bus_message*, void* userdata, sd_bus_error*) {
    *static_cast<bool*>(userdata) = true;
    return 0;
}

}  // namespace

FirewalldSignals::FirewalldSignals() : impl_(std::make_unique<Impl>()) {
    connect();
}

void FirewalldSignals::connect() {
    if (impl_->bus) return;
    sd_bus* bus = nullptr;
    if (sd_bus_open_system(&bus) < 0) return;
    // Floating matches: they live as long as the connection.
    if (sd_bus_match_signal(bus, nullptr, nullptr, "/org/fedoraproject/FirewallD1",
                            "org.fedoraproject.FirewallD1", "Reloaded", noted, &impl_->seen) < 0 ||
        sd_bus_add_match(bus, nullptr,
                         "type='signal',sender='org.freedesktop.DBus',"
                         "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                         "arg0='org.fedoraproject.FirewallD1'",
                         noted, &impl_->seen) < 0) {
        sd_bus_flush_close_unref(bus);
        return;
    }
    impl_->bus = bus;
    // What came while connecting (NameAcquired...) waits in sd-bus's queue,
    // and while anything does, sd_bus_get_events() asks for no POLLIN.
    process();
}

FirewalldSignals::~FirewalldSignals() = default;

int FirewalldSignals::fd() const {
    return impl_->bus ? sd_bus_get_fd(impl_->bus) : -1;
}

short FirewalldSignals::events() const {
    if (!impl_->bus) return 0;
    const int e = sd_bus_get_events(impl_->bus);
    return static_cast<short>(e < 0 ? 0 : e);
}

bool FirewalldSignals::process() {
    if (!impl_->bus) return false;
    impl_->seen = false;
    int r = 0;
    while ((r = sd_bus_process(impl_->bus, nullptr)) > 0) {
    }
    if (r < 0) {
        // The bus went away (its socket hangs up, and poll would say so
        // forever): let go of it, and connect() again later.
        sd_bus_flush_close_unref(impl_->bus);
        impl_->bus = nullptr;
        return true;  // firewalld may have gone with it
    }
    return impl_->seen;
}

}  // namespace portpub
