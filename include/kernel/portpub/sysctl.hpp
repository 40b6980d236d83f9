// Kernel settings through /proc/sys (never the sysctl program). Network
// settings are those of the calling thread's network namespace.
#pragma once

#include <optional>
#include <string>

namespace portpub {

// key like "net/ipv4/ip_forward"; nullopt when the setting does not exist.
std::optional<std::string> read_sysctl(const std::string& key);
void write_sysctl(const std::string& key, const std::string& value);

}  // namespace portpub
