// Callable values (macros, caller(), range(), namespace(), string and dict methods) and what a
// built-in function, filter or test sees of the render that calls it.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"
#include "engine/chat/limits.hpp"
#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

// Arguments of a call, after evaluation: f(a, b, key=c).
struct call_arguments {
  std::vector<value> positional;
  std::vector<std::pair<std::string, value>> keyword;
};

// The running render, as functions, filters and tests see it.
class render_state {
 public:
  // Counts `units` of work (bytes or elements produced); an error once the render's budget is spent.
  [[nodiscard]] virtual expected<void> charge(uint64_t units) = 0;
  [[nodiscard]] virtual const render_limits& limits() const = 0;

 protected:
  ~render_state() = default;
};

// The work of reading all of `v` (an operation that scans it): its bytes, or its elements.
[[nodiscard]] inline uint64_t weight(const value& v) {
  if (v.is_string()) return v.as_string().size();
  if (v.is_array()) return v.items().size() * cost_per_element;
  if (v.is_dict()) return v.as_object().size() * cost_per_element;
  return 0;
}

// Thread-safety: built-in callables are immutable; macros and caller() exist only inside the
// render that made them.
class callable {
 public:
  virtual ~callable() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual expected<value> call(render_state& state, const call_arguments& args) const = 0;
};

// Binds arguments to parameter `names` the way Python does (positional first, then by keyword):
// one entry per name, nullptr where the caller passed nothing. Too many positional arguments, an
// unknown keyword or one passed twice is an error naming `function`.
[[nodiscard]] expected<std::vector<const value*>> bind_arguments(
    std::string_view function, const call_arguments& args, std::initializer_list<std::string_view> names);

}  // namespace troupe::engine::chat
