// A table that keeps at most `max` entries, dropping the least recently used
// one to make room, and hands back entries idle for too long. The proxy keeps
// its UDP flows in one. Pure: time comes in as a number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace portpub {

template <class Key, class Value, class Hash = std::hash<Key>>
class LruTable {
  public:
    explicit LruTable(std::size_t max) : max_(max == 0 ? 1 : max) {}

    // The entry, marked as used at `now`; nullptr when absent.
    Value* find(const Key& key, std::uint64_t now) {
        auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        it->second->last = now;
        order_.splice(order_.begin(), order_, it->second);
        return &it->second->value;
    }

    // Adds an entry (the key must be absent); when the table is full, the
    // least recently used entry leaves first and is returned.
    std::optional<std::pair<Key, Value>> insert(Key key, Value value, std::uint64_t now) {
        std::optional<std::pair<Key, Value>> evicted;
        if (order_.size() >= max_) {
            auto& oldest = order_.back();
            evicted.emplace(std::move(oldest.key), std::move(oldest.value));
            index_.erase(evicted->first);
            order_.pop_back();
        }
        order_.push_front(Entry{key, std::move(value), now});
        index_.emplace(std::move(key), order_.begin());
        return evicted;
    }

    // Removes and returns the entries not used for `timeout` or longer.
    std::vector<std::pair<Key, Value>> expire(std::uint64_t now, std::uint64_t timeout) {
        std::vector<std::pair<Key, Value>> out;
        while (!order_.empty() && now - order_.back().last >= timeout) {
            auto& oldest = order_.back();
            index_.erase(oldest.key);
            out.emplace_back(std::move(oldest.key), std::move(oldest.value));
            order_.pop_back();
        }
        return out;
    }

    std::size_t size() const { return order_.size(); }

  private:
    struct Entry {
        Key key;
        Value value;
        std::uint64_t last;
    };
    std::size_t max_;
    std::list<Entry> order_;  // most recently used first
    std::unordered_map<Key, typename std::list<Entry>::iterator, Hash> index_;
};

}  // namespace portpub
