// The router's fair queue (see fair_queue.hpp).
#include "router/fair_queue.hpp"

#include <algorithm>

namespace troupe::router {

fair_queue::fair_queue(std::map<std::string, double> weights) : weights_(std::move(weights)) {}

fair_queue::line& fair_queue::line_of(const std::string& tenant) {
  auto [it, added] = lines_.try_emplace(tenant);
  if (added) {
    auto w = weights_.find(tenant);
    it->second.weight = w != weights_.end() && w->second > 0 ? w->second : 1.0;
  }
  return it->second;
}

std::optional<double> fair_queue::least_waiting_counter() const {
  std::optional<double> least;
  for (const auto& [tenant, l] : lines_)
    if (!l.waiting.empty() && (!least || l.counter < *least)) least = l.counter;
  return least;
}

void fair_queue::push(int64_t id, const std::string& tenant) {
  if (where_.count(id)) return;
  line& l = line_of(tenant);
  if (l.waiting.empty()) l.counter = std::max(l.counter, least_waiting_counter().value_or(floor_));
  l.waiting.emplace_back(id, arrivals_++);
  where_.emplace(id, tenant);
}

std::optional<std::pair<int64_t, std::string>> fair_queue::pop() {
  line* best = nullptr;
  const std::string* best_tenant = nullptr;
  for (auto& [tenant, l] : lines_) {
    if (l.waiting.empty()) continue;
    if (best == nullptr || l.counter < best->counter ||
        (l.counter == best->counter && l.waiting.front().second < best->waiting.front().second)) {
      best = &l;
      best_tenant = &tenant;
    }
  }
  if (best == nullptr) return std::nullopt;
  const int64_t id = best->waiting.front().first;
  best->waiting.pop_front();
  if (best->waiting.empty()) floor_ = best->counter;
  where_.erase(id);
  return std::pair{id, *best_tenant};
}

void fair_queue::restore(int64_t id, const std::string& tenant) {
  if (where_.count(id)) return;
  line& l = line_of(tenant);
  l.waiting.emplace_front(id, l.waiting.empty() ? arrivals_++ : l.waiting.front().second);
  where_.emplace(id, tenant);
}

bool fair_queue::remove(int64_t id) {
  auto w = where_.find(id);
  if (w == where_.end()) return false;
  line& l = lines_.at(w->second);
  l.waiting.erase(std::find_if(l.waiting.begin(), l.waiting.end(), [id](const auto& e) { return e.first == id; }));
  if (l.waiting.empty()) floor_ = l.counter;
  where_.erase(w);
  return true;
}

void fair_queue::charge(const std::string& tenant, double tokens) {
  line& l = line_of(tenant);
  l.counter += tokens / l.weight;
}

void fair_queue::dispatched(const std::string& tenant) { ++line_of(tenant).running; }

void fair_queue::settled(const std::string& tenant) {
  line& l = line_of(tenant);
  if (l.running > 0) --l.running;
}

bool fair_queue::favoured(const std::string& tenant) const {
  const auto self = lines_.find(tenant);
  if (self != lines_.end() && !self->second.waiting.empty()) return false;
  const double mine = self == lines_.end() ? 0 : self->second.counter;
  int others = 0;
  for (const auto& [name, l] : lines_) {
    if (name == tenant || (l.waiting.empty() && l.running == 0)) continue;
    ++others;
    if (l.counter < mine) return false;
  }
  return others > 0;
}

double fair_queue::counter(const std::string& tenant) const {
  auto it = lines_.find(tenant);
  return it == lines_.end() ? 0 : it->second.counter;
}

}  // namespace troupe::router
