// safetensors writer: the header as compact JSON padded with spaces to a multiple of 8 bytes (as the
// Python library writes it), then each tensor's bytes back to back in the order given.
#include <simdjson.h>

#include <set>

#include "common/json_escape.hpp"
#include "engine/model/format_checks.hpp"
#include "engine/model/output_file.hpp"
#include "engine/model/safetensors.hpp"

namespace troupe::engine {

namespace {

using detail::quote_name;

std::string_view safetensors_dtype_name(dtype t) {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::q8_0: break;
  }
  return {};
}

size_t element_size(dtype t) { return t == dtype::f32 ? 4 : 2; }

expected<void> check_utf8(const std::string& path, std::string_view what, std::string_view s) {
  if (!simdjson::validate_utf8(s.data(), s.size()))
    return fail(path + ": " + std::string(what) + " " + quote_name(s) + " is not valid UTF-8");
  return {};
}

}  // namespace

expected<void> write_safetensors(const std::string& path,
                                 const std::vector<safetensors_entry>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (auto r = check_utf8(path, "metadata key", key); !r) return r;
      if (auto r = check_utf8(path, "metadata value", value); !r) return r;
      if (!first) header += ',';
      first = false;
      append_json_string(header, key);
      header += ':';
      append_json_string(header, value);
    }
    header += '}';
  }

  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string who = path + ": tensor " + quote_name(t.name) + ": ";
    if (auto r = check_utf8(path, "tensor name", t.name); !r) return r;
    if (t.name == "__metadata__") return fail(who + "the name is reserved for the metadata");
    if (!names.insert(t.name).second) return fail(who + "appears twice");
    const std::string_view type_name = safetensors_dtype_name(t.type);
    if (type_name.empty())
      return fail(who + "dtype " + std::string(dtype_name(t.type)) + " cannot be stored in safetensors");
    const auto numel = detail::checked_numel(t.shape);
    if (!numel) return fail(who + "shape " + detail::format_list(t.shape) + " is invalid");
    const auto nbytes = detail::checked_mul(*numel, element_size(t.type));
    if (!nbytes || *nbytes != t.data.size())
      return fail(who + "has " + std::to_string(t.data.size()) + " bytes of data, shape " +
                  detail::format_list(t.shape) + " of " + std::string(type_name) + " needs " +
                  (nbytes ? std::to_string(*nbytes) : std::string("more")));

    if (header.size() > 1) header += ',';
    append_json_string(header, t.name);
    header += ":{\"dtype\":\"";
    header += type_name;
    header += "\",\"shape\":";
    header += '[';
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += ']';
    header += ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + *nbytes) + "]}";
    offset += *nbytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > safetensors_max_header)
    return fail(path + ": header of " + std::to_string(header.size()) + " bytes exceeds the limit");

  detail::output_file out(path);
  if (auto r = out.open(); !r) return r;
  const uint64_t header_len = header.size();
  if (auto r = out.write(&header_len, 8); !r) return r;
  if (auto r = out.write(header.data(), header.size()); !r) return r;
  for (const auto& t : tensors)
    if (auto r = out.write(t.data.data(), t.data.size()); !r) return r;
  return out.close();
}

}  // namespace troupe::engine
