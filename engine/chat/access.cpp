// Attribute, item and slice access, and iteration (see access.hpp).
#include "engine/chat/access.hpp"

#include "engine/chat/builtins.hpp"
#include "engine/chat/source_location.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

bool is_dict_method(std::string_view name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

value element(const value& seq, int64_t index) {
  if (seq.is_array()) {
    const auto& items = seq.items();
    const auto n = static_cast<int64_t>(items.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return {};
    return items[static_cast<size_t>(index)];
  }
  const std::string& s = seq.as_string();
  const std::vector<size_t> offsets = text::char_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size()) - 1;
  if (index < 0) index += n;
  if (index < 0 || index >= n) return {};
  const auto i = static_cast<size_t>(index);
  return value::string(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
}

// A slice bound: nullopt for absent (undefined or none); false when it is not an integer.
bool slice_bound(const value& v, std::optional<int64_t>& out) {
  if (v.is_undefined() || v.is_none()) return true;
  if (v.is_int()) {
    out = v.as_int();
    return true;
  }
  if (v.is_bool()) {
    out = v.as_bool() ? 1 : 0;
    return true;
  }
  return false;
}

}  // namespace

value get_attribute(const value& obj, std::string_view name) {
  if (obj.is_dict()) {
    if (is_dict_method(name)) return *find_method(obj, name);
    const value* v = obj.as_object().find(name);
    return v != nullptr ? *v : value{};
  }
  if (obj.is_namespace()) {
    const value* v = obj.as_object().find(name);
    return v != nullptr ? *v : value{};
  }
  if (auto m = find_method(obj, name)) return *m;
  return {};
}

value get_item(const value& obj, const value& key) {
  if (obj.is_object()) {
    if (key.is_string()) {
      if (const value* v = obj.as_object().find(key.as_string())) return *v;
      return obj.is_dict() ? get_attribute(obj, key.as_string()) : value{};
    }
    return {};
  }
  if (obj.is_array() || obj.is_string()) {
    if (key.is_int()) return element(obj, key.as_int());
    if (key.is_bool()) return element(obj, key.as_bool() ? 1 : 0);
    if (key.is_string()) return get_attribute(obj, key.as_string());
  }
  return {};
}

expected<value> get_slice(render_state& state, const value& obj, const value& start, const value& stop,
                          const value& step) {
  if (!obj.is_array() && !obj.is_string()) return value{};
  std::optional<int64_t> first, last, stride;
  if (!slice_bound(start, first) || !slice_bound(stop, last) || !slice_bound(step, stride)) return value{};
  if (stride && *stride == 0) return fail("slice step cannot be zero");
  if (obj.is_array()) {
    const auto& items = obj.items();
    const text::slice_range r = text::slice_indices(static_cast<int64_t>(items.size()), first, last, stride.value_or(1));
    if (auto c = state.charge(static_cast<uint64_t>(r.count) * cost_per_element); !c) return c.err();
    std::vector<value> out;
    out.reserve(static_cast<size_t>(r.count));
    for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) out.push_back(items[static_cast<size_t>(i)]);
    return value::list(std::move(out), obj.as_array().tuple);
  }
  const std::string& s = obj.as_string();
  const std::vector<size_t> offsets = text::char_offsets(s);
  const text::slice_range r =
      text::slice_indices(static_cast<int64_t>(offsets.size()) - 1, first, last, stride.value_or(1));
  if (r.step == 1) {
    const auto a = static_cast<size_t>(r.start);
    return value::string(r.count == 0 ? std::string() : s.substr(offsets[a], offsets[a + static_cast<size_t>(r.count)] - offsets[a]));
  }
  std::string out;
  for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) {
    const auto c = static_cast<size_t>(i);
    out.append(s, offsets[c], offsets[c + 1] - offsets[c]);
  }
  return value::string(std::move(out));
}

expected<value> to_list(const value& v) {
  switch (v.type()) {
    case value::kind::array: return v;
    case value::kind::undefined: return value::list({});
    case value::kind::string: {
      const std::string& s = v.as_string();
      std::vector<value> chars;
      for (size_t i = 0; i < s.size();) {
        size_t len = 0;
        (void)text::decode(s, i, len);
        chars.push_back(value::string(s.substr(i, len)));
        i += len;
      }
      return value::list(std::move(chars));
    }
    case value::kind::object:
      if (!v.is_namespace()) {
        std::vector<value> keys;
        keys.reserve(v.as_object().size());
        for (const auto& [k, item] : v.as_object().items()) keys.push_back(value::string(k));
        return value::list(std::move(keys));
      }
      break;
    default: break;
  }
  return fail(quoted(type_name(v)) + " object is not iterable");
}

}  // namespace troupe::engine::chat
