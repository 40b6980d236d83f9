#pragma once

namespace portpub {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace portpub
