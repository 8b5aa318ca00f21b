// The router's fair queue (see fair_queue.hpp).
#include "router/fair_queue.hpp"

#include <algorithm>
#include <cmath>

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
    // On a tie (a tenant just lifted to another's counter), the one with less in flight goes
    // first, then the older head: a light tenant does not wait behind a flood it has caught up with.
    const auto in_flight = [](const line& x) { return x.running + int64_t(x.waiting.size()); };
    if (best == nullptr || l.counter < best->counter ||
        (l.counter == best->counter &&
         (in_flight(l) < in_flight(*best) ||
          (in_flight(l) == in_flight(*best) && l.waiting.front().second < best->waiting.front().second)))) {
      best = &l;
      best_tenant = &tenant;
    }
  }
  if (best == nullptr) return std::nullopt;
  return take_front(*best, *best_tenant);
}

std::pair<int64_t, std::string> fair_queue::take_front(line& l, const std::string& tenant) {
  const int64_t id = l.waiting.front().first;
  l.waiting.pop_front();
  if (l.waiting.empty()) floor_ = l.counter;
  where_.erase(id);
  return {id, tenant};
}

std::optional<std::pair<int64_t, std::string>> fair_queue::pop_favoured(clock::time_point now) {
  // The active tenants' totals once, not once per waiting tenant: this runs on every step.
  const active_totals all = totals(now);
  line* best = nullptr;
  const std::string* best_tenant = nullptr;
  for (auto& [tenant, l] : lines_) {
    if (l.waiting.empty() || !favoured_among(&l, l.weight, all, now)) continue;
    if (best == nullptr || l.waiting.front().second < best->waiting.front().second) {
      best = &l;
      best_tenant = &tenant;
    }
  }
  if (best == nullptr) return std::nullopt;
  return take_front(*best, *best_tenant);
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

namespace {
constexpr double recent_time_constant_s = 2.0;
constexpr double favoured_below = 0.8;  // of the weighted share: no flapping between two busy tenants
}  // namespace

double fair_queue::line::recent_by(clock::time_point now) const {
  const double dt = std::chrono::duration<double>(now - recent_at).count();
  return dt <= 0 ? recent : recent * std::exp(-dt / recent_time_constant_s);
}

void fair_queue::charge(const std::string& tenant, double tokens, clock::time_point now) {
  line& l = line_of(tenant);
  l.counter += tokens / l.weight;
  l.recent = l.recent_by(now) + tokens;
  l.recent_at = now;
}

void fair_queue::dispatched(const std::string& tenant) { ++line_of(tenant).running; }

void fair_queue::settled(const std::string& tenant) {
  line& l = line_of(tenant);
  if (l.running > 0) --l.running;
}

fair_queue::active_totals fair_queue::totals(clock::time_point now) const {
  active_totals t;
  for (const auto& [name, l] : lines_) {
    if (!l.active()) continue;
    ++t.tenants;
    t.weights += l.weight;
    t.service += l.recent_by(now);
  }
  return t;
}

bool fair_queue::favoured_among(const line* self, double my_weight, const active_totals& all,
                                clock::time_point now) const {
  const bool counted = self != nullptr && self->active();  // `all` holds it already
  const double mine = self != nullptr ? self->recent_by(now) : 0;
  const int others = all.tenants - (counted ? 1 : 0);
  const double weights = all.weights - (counted ? self->weight : 0) + my_weight;
  const double service = all.service - (counted ? mine : 0) + mine;
  return others > 0 && service > 0 && mine < favoured_below * service * my_weight / weights;
}

bool fair_queue::favoured(const std::string& tenant, clock::time_point now) const {
  const auto self = lines_.find(tenant);
  if (self != lines_.end()) return favoured_among(&self->second, self->second.weight, totals(now), now);
  auto w = weights_.find(tenant);
  return favoured_among(nullptr, w != weights_.end() && w->second > 0 ? w->second : 1.0, totals(now), now);
}

double fair_queue::counter(const std::string& tenant) const {
  auto it = lines_.find(tenant);
  return it == lines_.end() ? 0 : it->second.counter;
}

}  // namespace troupe::router
