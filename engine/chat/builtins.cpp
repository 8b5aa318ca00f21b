// Global functions and str / dict methods (see builtins.hpp).
#include "engine/chat/builtins.hpp"

#include <array>
#include <ctime>

#include "engine/chat/access.hpp"
#include "engine/chat/callable.hpp"
#include "engine/chat/printing.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

using global_impl = expected<value> (*)(render_state& state, const call_arguments& args);
using method_impl = expected<value> (*)(render_state& state, const value& self, const call_arguments& args);

class builtin_function final : public callable {
 public:
  builtin_function(std::string_view name, global_impl impl) : name_(name), impl_(impl) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] expected<value> call(render_state& state, const call_arguments& args) const override {
    return impl_(state, args);
  }

 private:
  std::string_view name_;
  global_impl impl_;
};

class bound_method final : public callable {
 public:
  bound_method(value self, std::string_view name, method_impl impl) : self_(std::move(self)), name_(name), impl_(impl) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] expected<value> call(render_state& state, const call_arguments& args) const override {
    if (auto r = state.charge(weight(self_)); !r) return r.err();  // methods scan their receiver
    return impl_(state, self_, args);
  }

 private:
  value self_;
  std::string_view name_;
  method_impl impl_;
};

error type_error(std::string_view function, std::string_view what, const value& got) {
  return fail(std::string(function) + "(): " + std::string(what) + " must be str or None, not " +
              std::string(type_name(got)));
}

// An optional integer argument (bool counts); `fallback` when absent or none.
expected<int64_t> int_arg(std::string_view function, const value* v, int64_t fallback) {
  if (v == nullptr || v->is_none()) return fallback;
  if (v->is_int()) return v->as_int();
  if (v->is_bool()) return static_cast<int64_t>(v->as_bool());
  return fail(std::string(function) + "(): '" + std::string(type_name(*v)) +
              "' object cannot be interpreted as an integer");
}

expected<std::string_view> str_arg(std::string_view function, const value* v) {
  if (v == nullptr) return fail(std::string(function) + "() missing a required argument");
  if (!v->is_string()) {
    return fail(std::string(function) + "() argument must be str, not " + std::string(type_name(*v)));
  }
  return std::string_view(v->as_string());
}

// --- globals --------------------------------------------------------------------------------

expected<value> range_fn(render_state& state, const call_arguments& args) {
  if (!args.keyword.empty()) return fail("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) return fail("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  int64_t bounds[3] = {0, 0, 1};
  for (size_t i = 0; i < p.size(); ++i) {
    auto v = int_arg("range", &p[i], 0);
    if (!v) return v.err();
    bounds[p.size() == 1 ? 1 : i] = *v;
  }
  const auto [start, stop, step] = bounds;
  if (step == 0) return fail("range() arg 3 must not be zero");
  // The count without overflow: (stop - start) may not fit in int64.
  const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 stride = step > 0 ? step : -static_cast<__int128>(step);
  const __int128 count = span <= 0 ? 0 : (span + stride - 1) / stride;
  if (count > max_range_length) {
    return fail("range too big: the sandbox allows at most " + std::to_string(max_range_length) + " numbers");
  }
  if (auto r = state.charge(static_cast<uint64_t>(count) * cost_per_element); !r) return r.err();
  std::vector<value> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) out.push_back(value::integer(start + k * step));
  return value::list(std::move(out));
}

// dict(mapping-or-pairs, **kwargs) into `o` (namespace() and dict() take the same arguments).
expected<void> fill_mapping(std::string_view function, object& o, const call_arguments& args) {
  if (args.positional.size() > 1) {
    return fail(std::string(function) + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  }
  if (args.positional.size() == 1) {
    const value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [k, v] : source.as_object().items()) o.set(k, v);
    } else {
      auto pairs = to_list(source);
      if (!pairs) return pairs.err();
      for (const value& pair : pairs->items()) {
        auto kv = to_list(pair);
        if (!kv || kv->items().size() != 2 || !kv->items()[0].is_string()) {
          return fail(std::string(function) + " expects a dict or (str, value) pairs");
        }
        o.set(kv->items()[0].as_string(), kv->items()[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) o.set(k, v);
  return {};
}

expected<value> namespace_fn(render_state&, const call_arguments& args) {
  object_ptr o = make_object(true);
  if (auto r = fill_mapping("namespace", *o, args); !r) return r.err();
  return value::dict(std::move(o));
}

expected<value> dict_fn(render_state&, const call_arguments& args) {
  object_ptr o = make_object();
  if (auto r = fill_mapping("dict", *o, args); !r) return r.err();
  return value::dict(std::move(o));
}

// transformers' raise_exception: rendering fails with the template's message.
expected<value> raise_exception_fn(render_state&, const call_arguments& args) {
  auto a = bind_arguments("raise_exception", args, {"message"});
  if (!a) return a.err();
  return fail((*a)[0] != nullptr ? to_str(*(*a)[0]) : std::string("raise_exception() called"));
}

// transformers' strftime_now: datetime.now().strftime(format), local time.
expected<value> strftime_now_fn(render_state&, const call_arguments& args) {
  auto a = bind_arguments("strftime_now", args, {"format"});
  if (!a) return a.err();
  auto format = str_arg("strftime_now", (*a)[0]);
  if (!format) return format.err();
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  const std::string fmt(*format);
  // strftime returns 0 both for "too small" and for an empty result: grow, up to a bound.
  for (size_t size = 256; size <= (size_t{1} << 16); size *= 4) {
    std::string out(size, '\0');
    const size_t n = std::strftime(out.data(), out.size(), fmt.c_str(), &local);
    if (n > 0 || fmt.empty()) {
      out.resize(n);
      return value::string(std::move(out));
    }
  }
  return value::string("");
}

// --- str methods ----------------------------------------------------------------------------

template <std::string (*F)(std::string_view)>
expected<value> str_transform(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("this method takes no arguments");
  return value::string(F(self.as_string()));
}

template <text::strip_side Side>
expected<value> str_strip(render_state&, const value& self, const call_arguments& args) {
  auto a = bind_arguments("strip", args, {"chars"});
  if (!a) return a.err();
  const value* chars = (*a)[0];
  if (chars != nullptr && !chars->is_none() && !chars->is_string()) return type_error("strip", "chars", *chars);
  const std::optional<std::string_view> set =
      chars != nullptr && chars->is_string() ? std::optional<std::string_view>(chars->as_string()) : std::nullopt;
  return value::string(std::string(text::strip(self.as_string(), Side, set)));
}

expected<value> str_split(render_state&, const value& self, const call_arguments& args) {
  auto a = bind_arguments("split", args, {"sep", "maxsplit"});
  if (!a) return a.err();
  const value* sep = (*a)[0];
  if (sep != nullptr && !sep->is_none() && !sep->is_string()) return type_error("split", "sep", *sep);
  auto maxsplit = int_arg("split", (*a)[1], -1);
  if (!maxsplit) return maxsplit.err();
  std::optional<std::string_view> separator;
  if (sep != nullptr && sep->is_string()) {
    if (sep->as_string().empty()) return fail("empty separator");
    separator = sep->as_string();
  }
  std::vector<std::string> split = text::split(self.as_string(), separator, *maxsplit);
  std::vector<value> parts;
  parts.reserve(split.size());
  for (std::string& part : split) parts.push_back(value::string(std::move(part)));
  return value::list(std::move(parts));
}

expected<value> str_splitlines(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("splitlines() arguments are not supported");
  std::vector<value> lines;
  for (std::string_view line : text::splitlines(self.as_string())) lines.push_back(value::string(std::string(line)));
  return value::list(std::move(lines));
}

// The code-point range [start, end) of `s` that str methods with start/end arguments look at, as
// a byte range.
expected<std::pair<size_t, size_t>> char_window(std::string_view function, std::string_view s, const value* start,
                                                const value* end) {
  const std::vector<size_t> offsets = text::char_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size()) - 1;
  std::optional<int64_t> first, last;
  if (start != nullptr && !start->is_none()) {
    auto v = int_arg(function, start, 0);
    if (!v) return v.err();
    first = *v;
  }
  if (end != nullptr && !end->is_none()) {
    auto v = int_arg(function, end, 0);
    if (!v) return v.err();
    last = *v;
  }
  const text::slice_range r = text::slice_indices(n, first, last, 1);
  const auto a = static_cast<size_t>(std::min(r.start, n));
  return std::pair<size_t, size_t>(offsets[a], offsets[a + static_cast<size_t>(r.count)]);
}

template <bool Starts>
expected<value> str_affix(render_state&, const value& self, const call_arguments& args) {
  const char* name = Starts ? "startswith" : "endswith";
  auto a = bind_arguments(name, args, {"affix", "start", "end"});
  if (!a) return a.err();
  if ((*a)[0] == nullptr) return fail(std::string(name) + "() takes at least 1 argument");
  auto window = char_window(name, self.as_string(), (*a)[1], (*a)[2]);
  if (!window) return window.err();
  const std::string_view s = std::string_view(self.as_string()).substr(window->first, window->second - window->first);
  const auto test = [&](std::string_view affix) {
    return Starts ? s.substr(0, affix.size()) == affix
                  : s.size() >= affix.size() && s.substr(s.size() - affix.size()) == affix;
  };
  const value& affix = *(*a)[0];
  if (affix.is_string()) return value::boolean(test(affix.as_string()));
  if (affix.is_array() && affix.as_array().tuple) {
    for (const value& option : affix.items()) {
      if (!option.is_string()) return fail(std::string(name) + "(): tuple elements must be str");
      if (test(option.as_string())) return value::boolean(true);
    }
    return value::boolean(false);
  }
  return fail(std::string(name) + " first arg must be str or a tuple of str, not " + std::string(type_name(affix)));
}

expected<value> str_replace(render_state& state, const value& self, const call_arguments& args) {
  auto a = bind_arguments("replace", args, {"old", "new", "count"});
  if (!a) return a.err();
  auto old = str_arg("replace", (*a)[0]);
  if (!old) return old.err();
  auto repl = str_arg("replace", (*a)[1]);
  if (!repl) return repl.err();
  auto count = int_arg("replace", (*a)[2], -1);
  if (!count) return count.err();
  auto out = text::replace(self.as_string(), *old, *repl, *count, state.limits().max_output_bytes);
  if (!out) return fail("replace(): result is larger than the output limit");
  return value::string(std::move(*out));
}

template <bool Reverse>
expected<value> str_find(render_state&, const value& self, const call_arguments& args) {
  const char* name = Reverse ? "rfind" : "find";
  auto a = bind_arguments(name, args, {"sub", "start", "end"});
  if (!a) return a.err();
  auto sub = str_arg(name, (*a)[0]);
  if (!sub) return sub.err();
  auto window = char_window(name, self.as_string(), (*a)[1], (*a)[2]);
  if (!window) return window.err();
  const std::string_view s = self.as_string();
  const std::string_view part = s.substr(window->first, window->second - window->first);
  const size_t at = Reverse ? part.rfind(*sub) : part.find(*sub);
  if (at == std::string_view::npos) return value::integer(-1);
  return value::integer(static_cast<int64_t>(text::char_index(s, window->first + at)));
}

expected<value> str_count(render_state&, const value& self, const call_arguments& args) {
  auto a = bind_arguments("count", args, {"sub"});
  if (!a) return a.err();
  auto sub = str_arg("count", (*a)[0]);
  if (!sub) return sub.err();
  const std::string& s = self.as_string();
  if (sub->empty()) return value::integer(static_cast<int64_t>(text::length(s)) + 1);
  int64_t n = 0;
  for (size_t at = s.find(*sub); at != std::string::npos; at = s.find(*sub, at + sub->size())) ++n;
  return value::integer(n);
}

expected<value> str_join(render_state& state, const value& self, const call_arguments& args) {
  auto a = bind_arguments("join", args, {"iterable"});
  if (!a) return a.err();
  if ((*a)[0] == nullptr) return fail("join() takes exactly one argument");
  auto items = to_list(*(*a)[0]);
  if (!items) return items.err();
  std::string out;
  for (size_t i = 0; i < items->items().size(); ++i) {
    const value& item = items->items()[i];
    if (!item.is_string()) {
      return fail("sequence item " + std::to_string(i) + ": expected str instance, " + std::string(type_name(item)) +
                  " found");
    }
    if (i > 0) out += self.as_string();
    out += item.as_string();
    if (out.size() > state.limits().max_output_bytes) return fail("join(): result is larger than the output limit");
  }
  return value::string(std::move(out));
}

// str.isdigit / isalpha / isalnum / isspace / islower / isupper (ASCII classes; see text.hpp).
template <int Class>
expected<value> str_is(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("this method takes no arguments");
  const std::string& s = self.as_string();
  if (Class == 4) return value::boolean(text::is_lower(s));
  if (Class == 5) return value::boolean(text::is_upper(s));
  if (s.empty()) return value::boolean(false);
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = text::decode(s, i, len);
    i += len;
    const bool digit = cp >= '0' && cp <= '9';
    const bool alpha = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    const bool ok = Class == 0 ? digit : Class == 1 ? alpha : Class == 2 ? digit || alpha : text::is_space(cp);
    if (!ok) return value::boolean(false);
  }
  return value::boolean(true);
}

// --- dict methods ---------------------------------------------------------------------------

expected<value> dict_items(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("items() takes no arguments");
  std::vector<value> pairs;
  pairs.reserve(self.as_object().size());
  for (const auto& [k, v] : self.as_object().items()) pairs.push_back(value::list({value::string(k), v}, true));
  return value::list(std::move(pairs));
}

expected<value> dict_keys(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("keys() takes no arguments");
  return to_list(self);
}

expected<value> dict_values(render_state&, const value& self, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("values() takes no arguments");
  std::vector<value> values;
  values.reserve(self.as_object().size());
  for (const auto& [k, v] : self.as_object().items()) values.push_back(v);
  return value::list(std::move(values));
}

expected<value> dict_get(render_state&, const value& self, const call_arguments& args) {
  auto a = bind_arguments("get", args, {"key", "default"});
  if (!a) return a.err();
  if ((*a)[0] == nullptr) return fail("get() takes at least 1 argument");
  const value& key = *(*a)[0];
  if (key.is_string()) {
    if (const value* v = self.as_object().find(key.as_string())) return *v;
  }
  return (*a)[1] != nullptr ? *(*a)[1] : value::none();
}

struct method_entry {
  bool on_string;  // a str method; otherwise a dict method
  std::string_view name;
  method_impl impl;
};

constexpr std::array<method_entry, 26> methods = {{
    {true, "upper", str_transform<text::upper>},
    {true, "lower", str_transform<text::lower>},
    {true, "title", str_transform<text::title_method>},
    {true, "capitalize", str_transform<text::capitalize>},
    {true, "strip", str_strip<text::strip_side::both>},
    {true, "lstrip", str_strip<text::strip_side::left>},
    {true, "rstrip", str_strip<text::strip_side::right>},
    {true, "split", str_split},
    {true, "splitlines", str_splitlines},
    {true, "startswith", str_affix<true>},
    {true, "endswith", str_affix<false>},
    {true, "replace", str_replace},
    {true, "find", str_find<false>},
    {true, "rfind", str_find<true>},
    {true, "count", str_count},
    {true, "join", str_join},
    {true, "isdigit", str_is<0>},
    {true, "isalpha", str_is<1>},
    {true, "isalnum", str_is<2>},
    {true, "isspace", str_is<3>},
    {true, "islower", str_is<4>},
    {true, "isupper", str_is<5>},
    {false, "items", dict_items},
    {false, "keys", dict_keys},
    {false, "values", dict_values},
    {false, "get", dict_get},
}};

}  // namespace

const value* find_global(std::string_view name) {
  static const std::array<std::pair<std::string_view, value>, 5> globals = {{
      {"range", value::function(std::make_shared<builtin_function>("range", range_fn))},
      {"namespace", value::function(std::make_shared<builtin_function>("namespace", namespace_fn))},
      {"dict", value::function(std::make_shared<builtin_function>("dict", dict_fn))},
      {"raise_exception", value::function(std::make_shared<builtin_function>("raise_exception", raise_exception_fn))},
      {"strftime_now", value::function(std::make_shared<builtin_function>("strftime_now", strftime_now_fn))},
  }};
  for (const auto& [n, v] : globals) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::optional<value> find_method(const value& self, std::string_view name) {
  if (!self.is_string() && !self.is_dict()) return std::nullopt;
  for (const method_entry& m : methods) {
    if (m.on_string == self.is_string() && m.name == name) {
      return value::function(std::make_shared<bound_method>(self, m.name, m.impl));
    }
  }
  return std::nullopt;
}

}  // namespace troupe::engine::chat
