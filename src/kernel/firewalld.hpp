// firewalld over D-Bus (sd-bus): whether it runs, the zone of an interface,
// a runtime binding of an interface to a zone, and its StrictForwardPorts
// setting. Private to the kernel folder.
#pragma once

#include <string>

struct sd_bus;

namespace portpub {

class FirewalldBus {
  public:
    // Connects to the system bus on first use; no bus means no firewalld.
    FirewalldBus() = default;
    ~FirewalldBus();
    FirewalldBus(const FirewalldBus&) = delete;
    FirewalldBus& operator=(const FirewalldBus&) = delete;

    // Whether firewalld owns its name on the system bus.
    bool running();
    // The zone `interface` is bound to; "" for none.
    std::string zone_of(const std::string& interface);
    // Runtime only: a reload or restart of firewalld forgets it.
    void add_interface(const std::string& zone, const std::string& interface);
    void remove_interface(const std::string& zone, const std::string& interface);
    // StrictForwardPorts=yes (firewalld 2.3 and later; older ones have no such setting).
    bool strict_forward_ports();

  private:
    sd_bus* bus();
    sd_bus* bus_ = nullptr;
    bool tried_ = false;
};

}  // namespace portpub
