// `portpub watch`: waits for changes to nftables (a flush, `nft -f`, a table,
// chain or element deleted, iptables rules rewritten) and for firewalld's
// reloads and restarts, and puts back, through
// the publisher's restore, what the records say is missing; a line of log
// for each repair. It never fights a removal: what down, gc and forward rm
// take away has no record left to restore.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace portpub {

class Watcher {
  public:
    Watcher(std::filesystem::path state_dir, std::function<void(const std::string&)> log);
    // Repairs once, says it watches, then repairs after each burst of changes by another process
    // (quiet for 10 ms, or 100 ms after its first change), until `stop_fd`
    // is readable (a signalfd of SIGTERM and SIGINT).
    void run(int stop_fd);

  private:
    void repair();
    std::filesystem::path state_dir_;
    std::function<void(const std::string&)> log_;
};

}  // namespace portpub
