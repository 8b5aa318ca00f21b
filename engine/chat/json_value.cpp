// JSON to values (simdjson) and values to JSON (json.dumps's format).
#include "engine/chat/json_value.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/json_escape.hpp"
#include "engine/chat/limits.hpp"
#include "engine/chat/printing.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

expected<value> convert(simdjson::dom::element e, uint32_t depth) {
  if (depth > max_value_depth) {
    return fail("JSON nested deeper than " + std::to_string(max_value_depth) + " levels");
  }
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array array;
      if (e.get(array) != simdjson::SUCCESS) return fail("invalid JSON array");
      std::vector<value> items;
      for (simdjson::dom::element item : array) {
        auto v = convert(item, depth + 1);
        if (!v) return v;
        items.push_back(std::move(*v));
      }
      return value::list(std::move(items));
    }
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object fields;
      if (e.get(fields) != simdjson::SUCCESS) return fail("invalid JSON object");
      object_ptr o = make_object();
      for (const auto field : fields) {
        auto v = convert(field.value, depth + 1);
        if (!v) return v;
        o->set(std::string(field.key), std::move(*v));
      }
      return value::dict(std::move(o));
    }
    case simdjson::dom::element_type::INT64: return value::integer(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return value::number(static_cast<double>(e.get_uint64().value_unsafe()));
    case simdjson::dom::element_type::DOUBLE: return value::number(e.get_double().value_unsafe());
    case simdjson::dom::element_type::STRING: return value::string(std::string(e.get_string().value_unsafe()));
    case simdjson::dom::element_type::BOOL: return value::boolean(e.get_bool().value_unsafe());
    case simdjson::dom::element_type::NULL_VALUE: return value::none();
  }
  return fail("unexpected JSON element");
}

void append_ascii_string(std::string& out, std::string_view s) {
  std::string plain;
  append_json_string(plain, s);
  for (size_t i = 0; i < plain.size();) {
    const auto c = static_cast<unsigned char>(plain[i]);
    if (c < 0x7F) {  // json.dumps escapes DEL too when ensure_ascii
      out += plain[i++];
      continue;
    }
    size_t len = 0;
    char32_t cp = text::decode(plain, i, len);
    i += len;
    char buf[16];
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (cp >> 10)),
                    static_cast<unsigned>(0xDC00 + (cp & 0x3FF)));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
    }
    out += buf;
  }
}

class json_writer {
 public:
  explicit json_writer(const json_options& options) : options_(options) {}

  expected<void> write(const value& v, size_t level) {
    switch (v.type()) {
      case value::kind::none: out_ += "null"; return {};
      case value::kind::boolean: out_ += v.as_bool() ? "true" : "false"; return {};
      case value::kind::integer: out_ += std::to_string(v.as_int()); return {};
      case value::kind::floating: {
        const double d = v.as_double();
        if (std::isnan(d)) {
          out_ += "NaN";
        } else if (std::isinf(d)) {
          out_ += d < 0 ? "-Infinity" : "Infinity";
        } else {
          append_float(out_, d);
        }
        return {};
      }
      case value::kind::string: write_string(v.as_string()); return {};
      case value::kind::array: return write_array(v.items(), level);
      case value::kind::object:
        if (!v.is_namespace()) return write_object(v.as_object(), level);
        break;
      default: break;
    }
    return fail("Object of type " + std::string(type_name(v)) + " is not JSON serializable");
  }

  std::string take() { return std::move(out_); }

 private:
  void write_string(std::string_view s) {
    if (options_.ensure_ascii) {
      append_ascii_string(out_, s);
    } else {
      append_json_string(out_, s);
    }
  }

  void newline(size_t level) {
    out_ += '\n';
    for (size_t i = 0; i < level; ++i) out_ += *options_.indent;
  }

  expected<void> write_array(const std::vector<value>& items, size_t level) {
    if (items.empty()) {
      out_ += "[]";
      return {};
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += options_.item_separator;
      if (options_.indent) newline(level + 1);
      if (auto r = write(items[i], level + 1); !r) return r;
    }
    if (options_.indent) newline(level);
    out_ += ']';
    return {};
  }

  expected<void> write_object(const object& o, size_t level) {
    if (o.empty()) {
      out_ += "{}";
      return {};
    }
    std::vector<const std::pair<std::string, value>*> entries;
    entries.reserve(o.size());
    for (const auto& entry : o.items()) entries.push_back(&entry);
    if (options_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out_ += options_.item_separator;
      if (options_.indent) newline(level + 1);
      write_string(entries[i]->first);
      out_ += options_.key_separator;
      if (auto r = write(entries[i]->second, level + 1); !r) return r;
    }
    if (options_.indent) newline(level);
    out_ += '}';
    return {};
  }

  const json_options& options_;
  std::string out_;
};

}  // namespace

expected<value> from_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(json.data(), json.size()).get(doc); e != simdjson::SUCCESS) {
    return fail(std::string("invalid JSON: ") + simdjson::error_message(e));
  }
  return convert(doc, 0);
}

expected<std::string> to_json(const value& v, const json_options& options) {
  json_writer w(options);
  if (auto r = w.write(v, 0); !r) return r.err();
  return w.take();
}

}  // namespace troupe::engine::chat
