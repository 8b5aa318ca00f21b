// Value construction, dict lookup, truthiness and Python equality.
#include "engine/chat/value.hpp"

#include <algorithm>

#include "engine/chat/callable.hpp"

namespace troupe::engine::chat {
namespace {

// Dicts with more keys than this get a hash index; smaller ones are scanned.
constexpr size_t index_threshold = 16;

}  // namespace

const value* object::find(std::string_view key) const {
  if (index_) {
    const auto it = index_->find(key);
    return it == index_->end() ? nullptr : &items_[it->second].second;
  }
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void object::set(std::string key, value v) {
  if (index_) {
    const auto [it, inserted] = index_->try_emplace(key, items_.size());
    if (!inserted) {
      items_[it->second].second = std::move(v);
      return;
    }
    items_.emplace_back(std::move(key), std::move(v));
    return;
  }
  for (auto& [k, old] : items_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(v));
  if (items_.size() > index_threshold) {
    index_ = std::make_unique<key_index>();
    for (size_t i = 0; i < items_.size(); ++i) index_->emplace(items_[i].first, i);
  }
}

object_ptr make_object(bool is_namespace) { return std::make_shared<object>(is_namespace); }

value value::list(std::vector<value> items, bool tuple) {
  uint32_t depth = 0;
  for (const value& item : items) depth = std::max(depth, item.depth());
  value v;
  v.v_ = std::make_shared<const array>(array{std::move(items), tuple});
  v.depth_ = depth + 1;
  return v;
}

value value::dict(object_ptr o) {
  uint32_t depth = 0;
  if (!o->is_namespace()) {
    for (const auto& [k, item] : o->items()) depth = std::max(depth, item.depth());
    ++depth;
  }
  value v;
  v.v_ = std::move(o);
  v.depth_ = depth;
  return v;
}

value value::function(callable_ptr f) {
  value v;
  v.v_ = std::move(f);
  return v;
}

double value::to_double() const {
  switch (type()) {
    case kind::boolean: return as_bool() ? 1.0 : 0.0;
    case kind::integer: return static_cast<double>(as_int());
    default: return as_double();
  }
}

const void* value::identity() const {
  switch (type()) {
    case kind::array: return std::get<array_ptr>(v_).get();
    case kind::object: return std::get<object_ptr>(v_).get();
    case kind::function: return std::get<callable_ptr>(v_).get();
    default: return nullptr;
  }
}

bool value::truthy() const {
  switch (type()) {
    case kind::undefined:
    case kind::none: return false;
    case kind::boolean: return as_bool();
    case kind::integer: return as_int() != 0;
    case kind::floating: return as_double() != 0.0;
    case kind::string: return !as_string().empty();
    case kind::array: return !items().empty();
    case kind::object: return is_namespace() || !as_object().empty();
    case kind::function: return true;
  }
  return false;
}

std::string_view type_name(const value& v) {
  switch (v.type()) {
    case value::kind::undefined: return "Undefined";
    case value::kind::none: return "NoneType";
    case value::kind::boolean: return "bool";
    case value::kind::integer: return "int";
    case value::kind::floating: return "float";
    case value::kind::string: return "str";
    case value::kind::array: return v.as_array().tuple ? "tuple" : "list";
    case value::kind::object: return v.is_namespace() ? "Namespace" : "dict";
    case value::kind::function: return "function";
  }
  return "value";
}

bool equal(const value& a, const value& b) {
  uint64_t work = 0;
  return equal(a, b, work);
}

bool equal(const value& a, const value& b, uint64_t& work) {
  using kind = value::kind;
  ++work;
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      const int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
      const int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
      return x == y;
    }
    return a.to_double() == b.to_double();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case kind::undefined:
    case kind::none: return true;
    case kind::string:
      work += std::min(a.as_string().size(), b.as_string().size()) / 64;
      return a.as_string() == b.as_string();
    case kind::array: {
      // Python: a list never equals a tuple.
      if (a.as_array().tuple != b.as_array().tuple) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equal(x[i], y[i], work)) return false;
      }
      return true;
    }
    case kind::object: {
      if (a.is_namespace() || b.is_namespace()) return a.identity() == b.identity();
      const object& x = a.as_object();
      const object& y = b.as_object();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const value* w = y.find(k);
        if (w == nullptr || !equal(v, *w, work)) return false;
      }
      return true;
    }
    case kind::function: return a.identity() == b.identity();
    default: return false;  // numbers were handled above
  }
}

expected<std::vector<const value*>> bind_arguments(std::string_view function, const call_arguments& args,
                                                   std::initializer_list<std::string_view> names) {
  std::vector<const value*> bound(names.size(), nullptr);
  if (args.positional.size() > names.size()) {
    return fail(std::string(function) + "() takes at most " + std::to_string(names.size()) +
                " argument(s), " + std::to_string(args.positional.size()) + " given");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = &args.positional[i];
  for (const auto& [key, v] : args.keyword) {
    const auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) {
      return fail(std::string(function) + "() got an unexpected keyword argument '" + key + "'");
    }
    const auto i = static_cast<size_t>(it - names.begin());
    if (bound[i] != nullptr) {
      return fail(std::string(function) + "() got multiple values for argument '" + key + "'");
    }
    bound[i] = &v;
  }
  return bound;
}

}  // namespace troupe::engine::chat
