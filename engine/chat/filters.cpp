// Jinja's filters, one function each, with Jinja 3.1's signatures and Python semantics (see
// filters.hpp). Each binds its arguments with bind_arguments, so wrong arguments are errors that
// name the filter.
#include "engine/chat/filters.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "engine/chat/access.hpp"
#include "engine/chat/json_value.hpp"
#include "engine/chat/operators.hpp"
#include "engine/chat/printing.hpp"
#include "engine/chat/tests.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

using args_t = call_arguments;

expected<void> no_arguments(std::string_view filter, const args_t& args) {
  if (args.positional.empty() && args.keyword.empty()) return {};
  return fail(std::string(filter) + "() takes no arguments");
}

expected<bool> flag(std::string_view filter, const value* v, bool fallback) {
  if (v == nullptr) return fallback;
  if (v->is_bool() || v->is_int() || v->is_none()) return v->truthy();
  return fail(std::string(filter) + ": expected a boolean, got " + std::string(type_name(*v)));
}

expected<int64_t> integer(std::string_view filter, const value* v, int64_t fallback) {
  if (v == nullptr) return fallback;
  if (v->is_int()) return v->as_int();
  if (v->is_bool()) return static_cast<int64_t>(v->as_bool());
  return fail(std::string(filter) + ": expected an integer, got " + std::string(type_name(*v)));
}

expected<value> list_of(std::string_view filter, const value& v) {
  auto l = to_list(v);
  if (!l) return fail(std::string(filter) + ": " + l.message());
  return l;
}

// Work for handling `v` inside a filter (the evaluator charges only the filter's result): its
// string bytes / 64, or its elements.
expected<void> charge_for(render_state& state, const value& v) {
  if (v.is_string()) return state.charge(1 + v.as_string().size() / 64);
  if (v.is_array()) return state.charge(1 + v.items().size() * cost_per_element);
  return state.charge(1);
}

expected<void> check_size(render_state& state, std::string_view filter, size_t bytes) {
  if (bytes > state.limits().max_output_bytes) return fail(std::string(filter) + ": result is larger than the output limit");
  return {};
}

// Jinja's make_attrgetter: "a.b.0" reads item a, then b, then index 0 (getitem semantics).
expected<value> attribute_path(const value& item, std::string_view path) {
  value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string_view part = path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (v.is_undefined()) return fail(quoted(path.substr(0, start == 0 ? 0 : start - 1)) + " is undefined");
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = digits && part.size() < 19 ? get_item(v, value::integer(std::atoll(std::string(part).c_str())))
                                   : get_item(v, value::string(std::string(part)));
    if (dot == std::string_view::npos) return v;
    start = dot + 1;
  }
}

// The key a sort or unique compares: the attribute, if any, of the item.
expected<value> sort_key(const value& item, const value* attribute) {
  if (attribute == nullptr || attribute->is_none()) return item;
  if (attribute->is_int()) return get_item(item, *attribute);
  if (!attribute->is_string()) return fail("attribute must be a string");
  return attribute_path(item, attribute->as_string());
}

// Sorts `items` stably by `keys`; the first incomparable pair is the error.
expected<void> stable_sort_by(render_state& state, std::vector<value>& items, std::vector<value>& keys,
                              bool case_sensitive, bool reverse) {
  std::vector<size_t> order_index(items.size());
  for (size_t i = 0; i < order_index.size(); ++i) order_index[i] = i;
  std::optional<error> failure;
  std::stable_sort(order_index.begin(), order_index.end(), [&](size_t x, size_t y) {
    if (failure) return false;
    auto c = order(state, keys[x], keys[y], case_sensitive);
    if (!c) {
      failure = c.err();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  if (failure) return *failure;
  std::vector<value> sorted;
  sorted.reserve(items.size());
  for (const size_t i : order_index) sorted.push_back(std::move(items[i]));
  items = std::move(sorted);
  return {};
}

// --- filters ----------------------------------------------------------------------------------

expected<value> f_abs(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("abs", args); !r) return r.err();
  if (v.is_float()) return value::number(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    const int64_t i = v.is_bool() ? v.as_bool() : v.as_int();
    if (i == INT64_MIN) return fail("integer overflow");
    return value::integer(i < 0 ? -i : i);
  }
  return fail("bad operand type for abs(): '" + std::string(type_name(v)) + "'");
}

expected<value> f_capitalize(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("capitalize", args); !r) return r.err();
  return value::string(text::capitalize(to_str(v)));
}

expected<value> f_length(render_state& state, const value& v, const args_t& args) {
  if (auto r = no_arguments("length", args); !r) return r.err();
  if (auto r = charge_for(state, v); !r) return r.err();  // counting characters reads the string
  switch (v.type()) {
    case value::kind::undefined: return value::integer(0);
    case value::kind::string: return value::integer(static_cast<int64_t>(text::length(v.as_string())));
    case value::kind::array: return value::integer(static_cast<int64_t>(v.items().size()));
    case value::kind::object:
      if (v.is_dict()) return value::integer(static_cast<int64_t>(v.as_object().size()));
      break;
    default: break;
  }
  return fail("object of type '" + std::string(type_name(v)) + "' has no len()");
}

expected<value> f_default(render_state&, const value& v, const args_t& args) {
  auto bound = bind_arguments("default", args, {"default_value", "boolean"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  auto boolean = flag("default", a[1], false);
  if (!boolean) return boolean.err();
  if (v.is_undefined() || (*boolean && !v.truthy())) return a[0] != nullptr ? *a[0] : value::string("");
  return v;
}

expected<value> f_dictsort(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  if (!v.is_dict()) return fail("dictsort: can only sort a dict, not " + std::string(type_name(v)));
  auto case_sensitive = flag("dictsort", a[0], false);
  if (!case_sensitive) return case_sensitive.err();
  auto reverse = flag("dictsort", a[2], false);
  if (!reverse) return reverse.err();
  size_t position = 0;
  if (a[1] != nullptr) {
    if (a[1]->is_string() && a[1]->as_string() == "value") {
      position = 1;
    } else if (!(a[1]->is_string() && a[1]->as_string() == "key")) {
      return fail("dictsort: you can only sort by either 'key' or 'value'");
    }
  }
  std::vector<value> pairs;
  std::vector<value> keys;
  for (const auto& [k, item] : v.as_object().items()) {
    pairs.push_back(value::list({value::string(k), item}, true));
    keys.push_back(position == 0 ? value::string(k) : item);
  }
  if (auto r = stable_sort_by(state, pairs, keys, *case_sensitive, *reverse); !r) return r.err();
  return value::list(std::move(pairs));
}

expected<value> f_escape(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("escape", args); !r) return r.err();
  std::string out;
  for (const char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return value::string(std::move(out));
}

expected<value> f_first(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("first", args); !r) return r.err();
  auto items = list_of("first", v);
  if (!items) return items;
  return items->items().empty() ? value{} : items->items().front();
}

expected<value> f_last(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("last", args); !r) return r.err();
  auto items = list_of("last", v);
  if (!items) return items;
  return items->items().empty() ? value{} : items->items().back();
}

// Python's float(str): optional sign, digits with single underscores, a fraction, an exponent, or
// inf / infinity / nan; surrounding whitespace allowed.
std::optional<double> parse_python_float(std::string_view s) {
  s = text::strip(s, text::strip_side::both);
  if (s.empty()) return std::nullopt;
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      const bool between = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                           std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!between) return std::nullopt;
      continue;
    }
    clean += s[i];
  }
  if (clean.empty()) return std::nullopt;
  std::string lower = text::lower(clean);
  const std::string_view body = lower[0] == '+' || lower[0] == '-' ? std::string_view(lower).substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    const double x = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -x : x;
  }
  if (clean.empty() || clean.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

// Python's int(str, base): optional sign and digits with single underscores, whitespace around.
std::optional<int64_t> parse_python_int(std::string_view s, int base) {
  s = text::strip(s, text::strip_side::both);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  // int("0x1A", 16): a prefix matching the base is allowed.
  if (s.size() > 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    if ((base == 16 && p == 'x') || (base == 8 && p == 'o') || (base == 2 && p == 'b')) s.remove_prefix(2);
  }
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  __int128 v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (s[i - 1] == '_') return std::nullopt;
      continue;
    }
    const char c = static_cast<char>(s[i] | 0x20);
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > static_cast<__int128>(INT64_MAX) + 1) return std::nullopt;
  }
  if (negative) v = -v;
  if (v > INT64_MAX || v < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(v);
}

expected<value> f_float(render_state&, const value& v, const args_t& args) {
  auto bound = bind_arguments("float", args, {"default"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  const value fallback = a[0] != nullptr ? *a[0] : value::number(0.0);
  if (v.is_number()) return value::number(v.to_double());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return value::number(*d);
  }
  return fallback;
}

expected<value> f_int(render_state&, const value& v, const args_t& args) {
  auto bound = bind_arguments("int", args, {"default", "base"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  const value fallback = a[0] != nullptr ? *a[0] : value::integer(0);
  auto base = integer("int", a[1], 10);
  if (!base) return base.err();
  if (v.is_int()) return v;
  if (v.is_bool()) return value::integer(v.as_bool());
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return value::integer(static_cast<int64_t>(d));  // truncates toward zero, as int() does
  }
  if (v.is_string()) {
    if (*base < 2 || *base > 36) return fallback;
    if (auto i = parse_python_int(v.as_string(), static_cast<int>(*base))) return value::integer(*i);
    // Jinja's fallback: int(float(s)), so that "42.23" | int is 42.
    if (auto d = parse_python_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return value::integer(static_cast<int64_t>(*d));
    }
  }
  return fallback;
}

expected<value> f_indent(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("indent", args, {"width", "first", "blank"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  std::string indentation = "    ";
  if (a[0] != nullptr) {
    if (a[0]->is_string()) {
      indentation = a[0]->as_string();
    } else {
      auto width = integer("indent", a[0], 4);
      if (!width) return width.err();
      indentation.assign(static_cast<size_t>(std::clamp<int64_t>(*width, 0, 4096)), ' ');
    }
  }
  auto first = flag("indent", a[1], false);
  if (!first) return first.err();
  auto blank = flag("indent", a[2], false);
  if (!blank) return blank.err();
  // Jinja: s += "\n"; then the lines of s (str.splitlines), joined back with "\n".
  const std::string s = to_str(v) + "\n";
  const std::vector<std::string_view> lines = text::splitlines(s);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if (i > 0 && (*blank || !lines[i].empty())) out += indentation;
    out += lines[i];
    if (auto r = check_size(state, "indent", out.size()); !r) return r.err();
  }
  if (*first) out.insert(0, indentation);
  return value::string(std::move(out));
}

expected<value> f_items(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("items", args); !r) return r.err();
  if (v.is_undefined()) return value::list({});
  if (!v.is_dict()) return fail("items: can only get item pairs from a mapping");
  std::vector<value> pairs;
  for (const auto& [k, item] : v.as_object().items()) pairs.push_back(value::list({value::string(k), item}, true));
  return value::list(std::move(pairs));
}

expected<value> f_join(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("join", args, {"d", "attribute"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  std::string separator;
  if (a[0] != nullptr) separator = to_str(*a[0]);
  auto items = list_of("join", v);
  if (!items) return items;
  std::string out;
  for (size_t i = 0; i < items->items().size(); ++i) {
    if (i > 0) out += separator;
    if (a[1] != nullptr) {
      auto key = sort_key(items->items()[i], a[1]);
      if (!key) return key;
      append_str(out, *key);
    } else {
      append_str(out, items->items()[i]);
    }
    if (auto r = check_size(state, "join", out.size()); !r) return r.err();
  }
  return value::string(std::move(out));
}

expected<value> f_list(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("list", args); !r) return r.err();
  auto items = list_of("list", v);
  if (!items) return items;
  if (items->as_array().tuple) return value::list(items->items());
  return items;
}

expected<value> f_lower(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("lower", args); !r) return r.err();
  return value::string(text::lower(to_str(v)));
}

expected<value> f_upper(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("upper", args); !r) return r.err();
  return value::string(text::upper(to_str(v)));
}

expected<value> f_map(render_state& state, const value& v, const args_t& args) {
  auto items = list_of("map", v);
  if (!items) return items;
  std::vector<value> out;
  out.reserve(items->items().size());
  if (args.positional.empty()) {
    // map(attribute="a.b", default=x)
    const value* attribute = nullptr;
    const value* fallback = nullptr;
    for (const auto& [k, kv] : args.keyword) {
      if (k == "attribute") attribute = &kv;
      else if (k == "default") fallback = &kv;
      else return fail("map: unexpected keyword argument '" + k + "'");
    }
    if (attribute == nullptr) return fail("map: needs a filter name or attribute=");
    for (const value& item : items->items()) {
      auto r = sort_key(item, attribute);
      if (!r) return r;
      out.push_back(r->is_undefined() && fallback != nullptr ? *fallback : std::move(*r));
    }
    return value::list(std::move(out));
  }
  // map("filter", args...)
  if (!args.positional[0].is_string()) return fail("map: the filter name must be a string");
  const std::string& name = args.positional[0].as_string();
  const filter_fn f = find_filter(name);
  if (f == nullptr) return fail("map: unknown filter '" + name + "'");
  call_arguments rest{{args.positional.begin() + 1, args.positional.end()}, args.keyword};
  for (const value& item : items->items()) {
    auto r = f(state, item, rest);
    if (!r) return r;
    if (auto c = charge_for(state, *r); !c) return c.err();
    out.push_back(std::move(*r));
  }
  return value::list(std::move(out));
}

template <bool Max>
expected<value> f_extreme(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments(Max ? "max" : "min", args, {"case_sensitive", "attribute"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  auto case_sensitive = flag(Max ? "max" : "min", a[0], false);
  if (!case_sensitive) return case_sensitive.err();
  auto items = list_of(Max ? "max" : "min", v);
  if (!items) return items;
  const value* best = nullptr;
  value best_key;
  for (const value& item : items->items()) {
    auto key = sort_key(item, a[1]);
    if (!key) return key;
    if (best != nullptr) {
      auto c = order(state, *key, best_key, *case_sensitive);
      if (!c) return c.err();
      if (Max ? *c <= 0 : *c >= 0) continue;
    }
    best = &item;
    best_key = std::move(*key);
  }
  return best != nullptr ? *best : value{};
}

// select / reject: the items a test (given by name, with arguments) passes; truthiness without one.
// selectattr / rejectattr: the same, on an attribute of each item.
template <bool Select, bool OnAttribute>
expected<value> f_select(render_state& state, const value& v, const args_t& args) {
  const char* name = Select ? (OnAttribute ? "selectattr" : "select") : (OnAttribute ? "rejectattr" : "reject");
  if (!args.keyword.empty()) return fail(std::string(name) + ": keyword arguments are not supported");
  size_t next = 0;
  const value* attribute = nullptr;
  if (OnAttribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return fail(std::string(name) + ": the attribute must be a string");
    }
    attribute = &args.positional[next++];
  }
  test_fn test = nullptr;
  call_arguments test_args;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return fail(std::string(name) + ": the test name must be a string");
    test = find_test(args.positional[next].as_string());
    if (test == nullptr) return fail(std::string(name) + ": unknown test '" + args.positional[next].as_string() + "'");
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next) + 1, args.positional.end());
  }
  auto items = list_of(name, v);
  if (!items) return items;
  std::vector<value> out;
  for (const value& item : items->items()) {
    auto subject = sort_key(item, attribute);
    if (!subject) return subject;
    if (auto c = charge_for(state, *subject); !c) return c.err();
    bool passes = false;
    if (test != nullptr) {
      auto r = test(state, *subject, test_args);
      if (!r) return r.err();
      passes = *r;
    } else {
      passes = subject->truthy();
    }
    if (passes == Select) out.push_back(item);
  }
  return value::list(std::move(out));
}

expected<value> f_replace(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("replace", args, {"old", "new", "count"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  if (a[0] == nullptr || a[1] == nullptr) return fail("replace: needs the old and new strings");
  auto count = a[2] == nullptr || a[2]->is_none() ? expected<int64_t>(-1) : integer("replace", a[2], -1);
  if (!count) return count.err();
  auto out = text::replace(to_str(v), to_str(*a[0]), to_str(*a[1]), *count, state.limits().max_output_bytes);
  if (!out) return fail("replace: result is larger than the output limit");
  return value::string(std::move(*out));
}

expected<value> f_reverse(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("reverse", args); !r) return r.err();
  if (v.is_string()) {
    auto chars = to_list(v);
    std::string out;
    for (auto it = chars->items().rbegin(); it != chars->items().rend(); ++it) out += it->as_string();
    return value::string(std::move(out));
  }
  auto items = list_of("reverse", v);
  if (!items) return items;
  return value::list(std::vector<value>(items->items().rbegin(), items->items().rend()));
}

// Python's round(x, n) for a float: the decimal nearest x with n digits, ties to even (printf rounds
// the exact binary value the same way).
double round_float(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0) {
    if (digits > 300) return x;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  if (!std::isfinite(scale)) return std::copysign(0.0, x);
  return std::nearbyint(x / scale) * scale;
}

expected<value> f_round(render_state&, const value& v, const args_t& args) {
  auto bound = bind_arguments("round", args, {"precision", "method"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  auto precision = integer("round", a[0], 0);
  if (!precision) return precision.err();
  std::string method = "common";
  if (a[1] != nullptr) method = to_str(*a[1]);
  if (method != "common" && method != "ceil" && method != "floor") {
    return fail("round: method must be common, ceil or floor");
  }
  if (!v.is_number()) return fail("round: type " + std::string(type_name(v)) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_float()) return value::number(round_float(v.as_double(), *precision));
    const int64_t i = v.is_bool() ? v.as_bool() : v.as_int();
    if (*precision >= 0 || *precision < -18) return value::integer(*precision < -18 ? 0 : i);
    int64_t scale = 1;
    for (int64_t k = 0; k < -*precision; ++k) scale *= 10;
    int64_t q = i / scale;
    const int64_t r = i % scale;
    const int64_t twice = 2 * (r < 0 ? -r : r);
    if (twice > scale || (twice == scale && (q % 2 != 0))) q += i < 0 ? -1 : 1;
    return value::integer(q * scale);
  }
  const double scale = std::pow(10.0, static_cast<double>(*precision));
  const double x = v.to_double() * scale;
  return value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

expected<value> f_safe(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("safe", args); !r) return r.err();
  return value::string(to_str(v));  // Markup(x): the text of x
}

expected<value> f_sort(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("sort", args, {"reverse", "case_sensitive", "attribute"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  auto reverse = flag("sort", a[0], false);
  if (!reverse) return reverse.err();
  auto case_sensitive = flag("sort", a[1], false);
  if (!case_sensitive) return case_sensitive.err();
  auto items = list_of("sort", v);
  if (!items) return items;
  std::vector<value> sorted = items->items();
  std::vector<value> keys;
  keys.reserve(sorted.size());
  for (const value& item : sorted) {
    auto key = sort_key(item, a[2]);
    if (!key) return key;
    keys.push_back(std::move(*key));
  }
  if (auto r = stable_sort_by(state, sorted, keys, *case_sensitive, *reverse); !r) return r.err();
  return value::list(std::move(sorted));
}

expected<value> f_string(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("string", args); !r) return r.err();
  return value::string(to_str(v));
}

expected<value> f_sum(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("sum", args, {"attribute", "start"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  value total = a[1] != nullptr ? *a[1] : value::integer(0);
  auto items = list_of("sum", v);
  if (!items) return items;
  for (const value& item : items->items()) {
    auto term = sort_key(item, a[0]);
    if (!term) return term;
    if (term->is_undefined()) return fail("sum: an item is undefined");
    auto r = apply_binary(state, binary_op::add, total, *term);
    if (!r) return r;
    total = std::move(*r);
  }
  return total;
}

expected<value> f_title(render_state&, const value& v, const args_t& args) {
  if (auto r = no_arguments("title", args); !r) return r.err();
  return value::string(text::title_filter(to_str(v)));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), not Jinja's HTML-safe one.
expected<value> f_tojson(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  json_options options;
  auto ensure_ascii = flag("tojson", a[0], false);
  if (!ensure_ascii) return ensure_ascii.err();
  options.ensure_ascii = *ensure_ascii;
  auto sort_keys = flag("tojson", a[3], false);
  if (!sort_keys) return sort_keys.err();
  options.sort_keys = *sort_keys;
  if (a[1] != nullptr && !a[1]->is_none()) {
    if (a[1]->is_string()) {
      options.indent = a[1]->as_string();
    } else {
      auto width = integer("tojson", a[1], 0);
      if (!width) return width.err();
      options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(*width, 0, 4096)), ' ');
    }
    options.item_separator = ",";
  }
  if (a[2] != nullptr && !a[2]->is_none()) {
    if (!a[2]->is_array() || a[2]->items().size() != 2 || !a[2]->items()[0].is_string() ||
        !a[2]->items()[1].is_string()) {
      return fail("tojson: separators must be a pair of strings");
    }
    options.item_separator = a[2]->items()[0].as_string();
    options.key_separator = a[2]->items()[1].as_string();
  }
  auto json = to_json(v, options);
  if (!json) return fail("tojson: " + json.message());
  if (auto r = check_size(state, "tojson", json->size()); !r) return r.err();
  return value::string(std::move(*json));
}

expected<value> f_trim(render_state&, const value& v, const args_t& args) {
  auto bound = bind_arguments("trim", args, {"chars"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  std::optional<std::string_view> chars;
  std::string chars_text;
  if (a[0] != nullptr && !a[0]->is_none()) {
    chars_text = to_str(*a[0]);
    chars = chars_text;
  }
  return value::string(std::string(text::strip(to_str(v), text::strip_side::both, chars)));
}

// A hashable value's identity for unique(): Python's hash equality (1 == 1.0 == True).
expected<std::string> hash_key(const value& v, bool case_sensitive) {
  switch (v.type()) {
    case value::kind::none: return std::string("N");
    case value::kind::undefined: return std::string("U");
    case value::kind::string: return "s" + (case_sensitive ? v.as_string() : text::lower(v.as_string()));
    case value::kind::boolean:
    case value::kind::integer: return "n" + std::to_string(v.is_bool() ? v.as_bool() : v.as_int());
    case value::kind::floating: {
      const double d = v.as_double();
      if (d == std::floor(d) && std::fabs(d) < 9.2e18) return "n" + std::to_string(static_cast<int64_t>(d));
      std::string s = "f";
      append_float(s, d);
      return s;
    }
    case value::kind::array:
      if (v.as_array().tuple) {
        std::string s = "t(";
        for (const value& item : v.items()) {
          auto k = hash_key(item, case_sensitive);
          if (!k) return k;
          s += std::to_string(k->size()) + ":" + *k;
        }
        return s + ")";
      }
      break;
    default: break;
  }
  return fail("unhashable type: '" + std::string(type_name(v)) + "'");
}

expected<value> f_unique(render_state& state, const value& v, const args_t& args) {
  auto bound = bind_arguments("unique", args, {"case_sensitive", "attribute"});
  if (!bound) return bound.err();
  const std::vector<const value*>& a = *bound;
  auto case_sensitive = flag("unique", a[0], false);
  if (!case_sensitive) return case_sensitive.err();
  auto items = list_of("unique", v);
  if (!items) return items;
  std::unordered_set<std::string> seen;
  std::vector<value> out;
  for (const value& item : items->items()) {
    auto key = sort_key(item, a[1]);
    if (!key) return key;
    auto h = hash_key(*key, *case_sensitive);
    if (!h) return fail("unique: " + h.message());
    if (auto c = state.charge(cost_per_element + h->size() / 64); !c) return c.err();
    if (seen.insert(std::move(*h)).second) out.push_back(item);
  }
  return value::list(std::move(out));
}

struct filter_entry {
  std::string_view name;
  filter_fn fn;
};

constexpr std::array<filter_entry, 38> filters = {{
    {"abs", f_abs},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_extreme<true>},
    {"min", f_extreme<false>},
    {"reject", f_select<false, false>},
    {"rejectattr", f_select<false, true>},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select<true, false>},
    {"selectattr", f_select<true, true>},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"forceescape", f_escape},
}};

}  // namespace

filter_fn find_filter(std::string_view name) {
  for (const filter_entry& f : filters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

}  // namespace troupe::engine::chat
