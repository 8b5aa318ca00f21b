// Python operator semantics (see operators.hpp).
#include "engine/chat/operators.hpp"

#include <algorithm>
#include <cmath>

#include "engine/chat/printing.hpp"
#include "engine/chat/source_location.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

std::string_view symbol(binary_op op) {
  switch (op) {
    case binary_op::add: return "+";
    case binary_op::subtract: return "-";
    case binary_op::multiply: return "*";
    case binary_op::divide: return "/";
    case binary_op::floor_divide: return "//";
    case binary_op::modulo: return "%";
    case binary_op::power: return "**";
    case binary_op::concat: return "~";
    case binary_op::logical_and: return "and";
    case binary_op::logical_or: return "or";
  }
  return "?";
}

error unsupported(binary_op op, const value& a, const value& b) {
  return fail("unsupported operand type(s) for " + std::string(symbol(op)) + ": '" + std::string(type_name(a)) +
              "' and '" + std::string(type_name(b)) + "'");
}

error overflow() { return fail("integer overflow (this interpreter's integers are 64-bit)"); }

// bool and int as int64 (the value must be a number but not a float).
int64_t int_of(const value& v) { return v.is_bool() ? static_cast<int64_t>(v.as_bool()) : v.as_int(); }

expected<value> integer_op(binary_op op, int64_t x, int64_t y) {
  int64_t r = 0;
  switch (op) {
    case binary_op::add:
      if (__builtin_add_overflow(x, y, &r)) return overflow();
      return value::integer(r);
    case binary_op::subtract:
      if (__builtin_sub_overflow(x, y, &r)) return overflow();
      return value::integer(r);
    case binary_op::multiply:
      if (__builtin_mul_overflow(x, y, &r)) return overflow();
      return value::integer(r);
    case binary_op::divide:
      if (y == 0) return fail("division by zero");
      return value::number(static_cast<double>(x) / static_cast<double>(y));
    case binary_op::floor_divide:
    case binary_op::modulo: {
      if (y == 0) return fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) {
        if (op == binary_op::modulo) return value::integer(0);
        return overflow();
      }
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python rounds the quotient toward negative infinity
        --q;
        m += y;
      }
      return value::integer(op == binary_op::modulo ? m : q);
    }
    case binary_op::power: {
      if (y < 0) {
        if (x == 0) return fail("0.0 cannot be raised to a negative power");
        return value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      int64_t result = 1;
      int64_t base = x;
      for (int64_t e = y; e > 0; e >>= 1) {
        if (e & 1) {
          if (__builtin_mul_overflow(result, base, &result)) return overflow();
        }
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) return overflow();
      }
      return value::integer(result);
    }
    default: return fail("not an arithmetic operator");
  }
}

expected<value> float_op(binary_op op, double x, double y) {
  switch (op) {
    case binary_op::add: return value::number(x + y);
    case binary_op::subtract: return value::number(x - y);
    case binary_op::multiply: return value::number(x * y);
    case binary_op::divide:
      if (y == 0) return fail("float division by zero");
      return value::number(x / y);
    case binary_op::floor_divide:
    case binary_op::modulo: {
      if (y == 0) return fail(op == binary_op::modulo ? "float modulo" : "float floor division by zero");
      // CPython's float_divmod.
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      double floordiv = 0;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return value::number(op == binary_op::modulo ? mod : floordiv);
    }
    case binary_op::power: {
      if (x == 0 && y < 0) return fail("0.0 cannot be raised to a negative power");
      if (x < 0 && y != std::floor(y)) return fail("unsupported: a negative number to a fractional power is complex");
      const double r = std::pow(x, y);
      if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) return fail("numerical result out of range");
      return value::number(r);
    }
    default: return fail("not an arithmetic operator");
  }
}

// s * n (or list * n): n copies, nothing for n <= 0.
expected<value> repeat(render_state& state, const value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? value::string("") : value::list({}, seq.as_array().tuple);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > state.limits().max_output_bytes / s.size()) {
      return fail("string repetition is larger than the output limit");
    }
    if (auto r = state.charge(s.size() * static_cast<uint64_t>(n)); !r) return r.err();
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return value::string(std::move(out));
  }
  const auto& items = seq.items();
  if (!items.empty() && static_cast<uint64_t>(n) > state.limits().max_loop_iterations / items.size()) {
    return fail("list repetition is larger than the loop limit");
  }
  if (auto r = state.charge(items.size() * static_cast<uint64_t>(n) * cost_per_element); !r) return r.err();
  std::vector<value> out;
  out.reserve(items.size() * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return value::list(std::move(out), seq.as_array().tuple);
}

std::string_view symbol(compare_op op) {
  switch (op) {
    case compare_op::lt: return "<";
    case compare_op::le: return "<=";
    case compare_op::gt: return ">";
    case compare_op::ge: return ">=";
    default: return "==";
  }
}

// Three-way comparison; `work` counts values visited and string bytes / 64.
expected<int> order_impl(const value& a, const value& b, bool fold_case, std::string_view op, uint64_t& work) {
  ++work;
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      const int64_t x = int_of(a);
      const int64_t y = int_of(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const double x = a.to_double();
    const double y = b.to_double();
    return x < y ? -1 : x > y ? 1 : 0;  // NaN compares equal to everything here, as "not less"
  }
  if (a.is_string() && b.is_string()) {
    work += (a.as_string().size() + b.as_string().size()) / 64;
    const int c = fold_case ? text::lower(a.as_string()).compare(text::lower(b.as_string()))
                            : a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array() && a.as_array().tuple == b.as_array().tuple) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equal(x[i], y[i], work)) continue;
      return order_impl(x[i], y[i], fold_case, op, work);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return fail(quoted(op) + " not supported between instances of '" + std::string(type_name(a)) +
              "' and '" + std::string(type_name(b)) + "'");
}

}  // namespace

expected<value> apply_binary(render_state& state, binary_op op, const value& a, const value& b) {
  if (op == binary_op::concat) {
    std::string s = to_str(a);
    append_str(s, b);
    if (s.size() > state.limits().max_output_bytes) return fail("string is larger than the output limit");
    if (auto r = state.charge(s.size() / 64); !r) return r.err();
    return value::string(std::move(s));
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return float_op(op, a.to_double(), b.to_double());
    return integer_op(op, int_of(a), int_of(b));
  }
  if (op == binary_op::add) {
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > state.limits().max_output_bytes) {
        return fail("string is larger than the output limit");
      }
      if (auto r = state.charge((a.as_string().size() + b.as_string().size()) / 64); !r) return r.err();
      return value::string(a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array() && a.as_array().tuple == b.as_array().tuple) {
      std::vector<value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      if (items.size() > state.limits().max_loop_iterations) return fail("list is larger than the loop limit");
      if (auto r = state.charge(items.size() * cost_per_element); !r) return r.err();
      return value::list(std::move(items), a.as_array().tuple);
    }
    if (a.is_string() || b.is_string()) {
      const value& other = a.is_string() ? b : a;
      return fail("can only concatenate str (not \"" + std::string(type_name(other)) + "\") to str");
    }
  }
  if (op == binary_op::multiply) {
    const bool a_seq = a.is_string() || a.is_array();
    const bool b_seq = b.is_string() || b.is_array();
    if (a_seq && (b.is_int() || b.is_bool())) return repeat(state, a, int_of(b));
    if (b_seq && (a.is_int() || a.is_bool())) return repeat(state, b, int_of(a));
  }
  if (op == binary_op::modulo && a.is_string()) return fail("unsupported: printf-style formatting with '%'");
  return unsupported(op, a, b);
}

expected<bool> compare(render_state& state, compare_op op, const value& a, const value& b) {
  uint64_t work = 0;
  expected<bool> result = false;
  switch (op) {
    case compare_op::eq: result = equal(a, b, work); break;
    case compare_op::ne: result = !equal(a, b, work); break;
    case compare_op::in: return contains(state, b, a);
    case compare_op::not_in: {
      auto r = contains(state, b, a);
      if (!r) return r;
      return !*r;
    }
    default: {
      // NaN: every ordering comparison is false, as in Python.
      const bool nan = (a.is_float() && std::isnan(a.as_double())) || (b.is_float() && std::isnan(b.as_double()));
      if (nan && a.is_number() && b.is_number()) return false;
      auto c = order_impl(a, b, false, symbol(op), work);
      if (!c) return c.err();
      result = op == compare_op::lt ? *c < 0 : op == compare_op::le ? *c <= 0 : op == compare_op::gt ? *c > 0 : *c >= 0;
    }
  }
  if (auto r = state.charge(work * cost_per_comparison); !r) return r.err();
  return result;
}

expected<bool> contains(render_state& state, const value& container, const value& item) {
  uint64_t work = 1;
  expected<bool> result = false;
  switch (container.type()) {
    case value::kind::undefined: return false;  // Jinja's Undefined iterates as empty
    case value::kind::string:
      if (!item.is_string()) {
        return fail("'in <string>' requires string as left operand, not " + std::string(type_name(item)));
      }
      work += container.as_string().size() / 64;
      result = container.as_string().find(item.as_string()) != std::string::npos;
      break;
    case value::kind::array:
      result = std::any_of(container.items().begin(), container.items().end(),
                           [&](const value& v) { return equal(v, item, work); });
      break;
    case value::kind::object:
      if (container.is_namespace()) return fail("argument of type 'Namespace' is not iterable");
      result = item.is_string() && container.as_object().find(item.as_string()) != nullptr;
      break;
    default: return fail("argument of type '" + std::string(type_name(container)) + "' is not iterable");
  }
  if (auto r = state.charge(work * cost_per_comparison); !r) return r.err();
  return result;
}

expected<int> order(render_state& state, const value& a, const value& b, bool case_sensitive) {
  uint64_t work = 0;
  auto c = order_impl(a, b, !case_sensitive, "<", work);
  if (!c) return c;
  if (auto r = state.charge(work * cost_per_comparison); !r) return r.err();
  return c;
}

}  // namespace troupe::engine::chat
