// An integer field of a JSON document portpub reads back (records, the
// forward state), taken whole or refused. nlohmann's get<T>() converts what
// it finds: a float out of T's range is undefined behaviour, a larger
// integer wraps (a host port 70000 would read as 4464), a boolean or a
// fraction passes as a number. Here each is an error naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>

namespace portpub {

template <class T>
T json_integer(const nlohmann::json& j, const char* key) {
    const auto& v = j.at(key);
    const std::string what = std::string(key) + " " + v.dump();
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (!std::in_range<T>(u)) throw std::invalid_argument(what + " is out of range");
        return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
        const auto s = v.get<std::int64_t>();
        if (!std::in_range<T>(s)) throw std::invalid_argument(what + " is out of range");
        return static_cast<T>(s);
    }
    throw std::invalid_argument(what + " is not a whole number");
}

}  // namespace portpub
