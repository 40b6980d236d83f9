// firewalld's announcements on the system bus, for the watcher: `Reloaded`
// (a reload forgets runtime zone bindings) and its name changing owner
// (firewalld started or restarted). No bus is no firewalld: nothing to poll.
#pragma once

#include <memory>

namespace portpub {

class FirewalldSignals {
  public:
    FirewalldSignals();  // never throws: without a bus, fd() is -1
    ~FirewalldSignals();
    FirewalldSignals(const FirewalldSignals&) = delete;
    FirewalldSignals& operator=(const FirewalldSignals&) = delete;

    int fd() const;        // -1 without a bus
    short events() const;  // what to poll it for
    // Handles what came; true when firewalld reloaded, started or went, or
    // the bus itself went (fd() is -1 from then on).
    bool process();
    // Connects to the bus when not connected (it was not there, or went):
    // the watcher tries again after each repair.
    void connect();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace portpub
