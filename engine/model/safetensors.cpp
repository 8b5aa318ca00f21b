// safetensors reader: checks the header length, the JSON header and every tensor's dtype, shape and
// data_offsets against the file before handing out views into the mapping.
#include "engine/model/safetensors.hpp"

#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>

#include "engine/model/format_checks.hpp"

namespace troupe::engine {

namespace {

using detail::format_list;
using detail::quote_name;

struct dtype_info {
  dtype type;
  size_t size;
};

// The safetensors dtype names this engine loads; everything else (I8, F64, F8_E4M3, ...) is refused.
std::optional<dtype_info> safetensors_dtype(std::string_view name) {
  if (name == "F32") return dtype_info{dtype::f32, 4};
  if (name == "F16") return dtype_info{dtype::f16, 2};
  if (name == "BF16") return dtype_info{dtype::bf16, 2};
  return std::nullopt;
}

// A JSON number that is a non-negative integer; nullopt for negatives, fractions and non-numbers.
std::optional<uint64_t> json_uint(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::INT64: {
      const int64_t v = int64_t(e);
      if (v < 0) return std::nullopt;
      return uint64_t(v);
    }
    case simdjson::dom::element_type::UINT64:
      return uint64_t(e);
    default:
      return std::nullopt;
  }
}

std::string json_text(simdjson::dom::element e) {
  std::string s = simdjson::minify(e);
  if (s.size() > 60) s = s.substr(0, 60) + "...";
  return s;
}

struct tensor_span {
  uint64_t begin;
  uint64_t end;
  size_t index;
};

class header_parser {
 public:
  header_parser(const std::string& file_name, uint64_t data_size)
      : file_name_(file_name), data_size_(data_size) {}

  // Parses one "name": {...} entry; fills `out` and its offsets.
  expected<void> parse_tensor(std::string_view name, simdjson::dom::element value,
                              tensor_view& out, tensor_span& span) {
    const std::string who = file_name_ + ": tensor " + quote_name(name) + ": ";
    simdjson::dom::object obj;
    if (value.get_object().get(obj) != simdjson::SUCCESS)
      return fail(who + "entry is not a JSON object but " + json_text(value));

    std::optional<simdjson::dom::element> dtype_el, shape_el, offsets_el;
    for (auto field : obj) {
      std::optional<simdjson::dom::element>* slot = nullptr;
      if (field.key == "dtype") slot = &dtype_el;
      else if (field.key == "shape") slot = &shape_el;
      else if (field.key == "data_offsets") slot = &offsets_el;
      else return fail(who + "unexpected field " + quote_name(field.key));
      if (slot->has_value()) return fail(who + "field " + quote_name(field.key) + " appears twice");
      *slot = field.value;
    }
    if (!dtype_el) return fail(who + "missing \"dtype\"");
    if (!shape_el) return fail(who + "missing \"shape\"");
    if (!offsets_el) return fail(who + "missing \"data_offsets\"");

    std::string_view dtype_name;
    if (dtype_el->get_string().get(dtype_name) != simdjson::SUCCESS)
      return fail(who + "dtype is not a string but " + json_text(*dtype_el));
    const auto info = safetensors_dtype(dtype_name);
    if (!info)
      return fail(who + "unsupported dtype " + quote_name(dtype_name) + " (supported: F32, F16, BF16)");

    simdjson::dom::array shape_arr;
    if (shape_el->get_array().get(shape_arr) != simdjson::SUCCESS)
      return fail(who + "shape is not an array but " + json_text(*shape_el));
    std::vector<int64_t> shape;
    for (auto d : shape_arr) {
      const auto v = json_uint(d);
      if (!v) return fail(who + "shape entry " + json_text(d) + " is not a non-negative integer");
      if (*v > uint64_t(INT64_MAX)) return fail(who + "shape entry " + std::to_string(*v) + " is too large");
      shape.push_back(int64_t(*v));
    }
    const auto numel = detail::checked_numel(shape);
    const auto nbytes = numel ? detail::checked_mul(*numel, info->size) : std::nullopt;
    if (!nbytes) return fail(who + "shape " + format_list(shape) + " has too many elements");

    simdjson::dom::array off_arr;
    if (offsets_el->get_array().get(off_arr) != simdjson::SUCCESS || off_arr.size() != 2)
      return fail(who + "data_offsets must be an array of two integers, got " + json_text(*offsets_el));
    const auto begin = json_uint(off_arr.at(0).value_unsafe());
    const auto end = json_uint(off_arr.at(1).value_unsafe());
    if (!begin || !end)
      return fail(who + "data_offsets must be non-negative integers, got " + json_text(*offsets_el));
    const std::string offsets_text = format_list(std::vector<uint64_t>{*begin, *end});
    if (*begin > *end)
      return fail(who + "data_offsets " + offsets_text + " end before they begin");
    if (*end > data_size_)
      return fail(who + "data_offsets " + offsets_text + " lie beyond the data section (" +
                  std::to_string(data_size_) + " bytes)");
    if (*end - *begin != *nbytes)
      return fail(who + "data_offsets " + offsets_text + " do not match shape " + format_list(shape) +
                  " of " + std::string(dtype_name) + " (" + std::to_string(*nbytes) + " bytes)");

    out.name = std::string(name);
    out.type = info->type;
    out.shape = std::move(shape);
    out.nbytes = size_t(*nbytes);
    span.begin = *begin;
    span.end = *end;
    return {};
  }

  expected<void> parse_metadata(simdjson::dom::element value,
                                std::map<std::string, std::string>& metadata) {
    const std::string who = file_name_ + ": __metadata__: ";
    if (value.is_null()) return {};  // the Python library reads null as "no metadata"
    simdjson::dom::object obj;
    if (value.get_object().get(obj) != simdjson::SUCCESS)
      return fail(who + "not a JSON object but " + json_text(value));
    for (auto field : obj) {
      std::string_view text;
      if (field.value.get_string().get(text) != simdjson::SUCCESS)
        return fail(who + "value of " + quote_name(field.key) + " is not a string but " +
                    json_text(field.value));
      if (!metadata.emplace(std::string(field.key), std::string(text)).second)
        return fail(who + "key " + quote_name(field.key) + " appears twice");
    }
    return {};
  }

 private:
  const std::string& file_name_;
  uint64_t data_size_;
};

}  // namespace

const tensor_view* safetensors_file::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

expected<safetensors_file> parse_safetensors(std::span<const std::byte> image,
                                             const std::string& file_name) {
  if (image.size() < 8)
    return fail(file_name + ": file is " + std::to_string(image.size()) +
                " bytes, too short for the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, image.data(), 8);  // little-endian on every host we build for
  static_assert(std::endian::native == std::endian::little);
  if (header_len > safetensors_max_header)
    return fail(file_name + ": header length " + std::to_string(header_len) + " exceeds the " +
                std::to_string(safetensors_max_header) + "-byte limit");
  if (header_len > image.size() - 8)
    return fail(file_name + ": header length " + std::to_string(header_len) +
                " exceeds the file size (" + std::to_string(image.size()) + " bytes)");
  if (header_len < 2) return fail(file_name + ": header length " + std::to_string(header_len) +
                                  " is too short for a JSON object");

  // simdjson reads up to SIMDJSON_PADDING bytes past the end, so the header gets its own buffer.
  const auto* header = reinterpret_cast<const char*>(image.data() + 8);
  if (header[0] != '{')
    return fail(file_name + ": header does not start with '{' (not a safetensors file?)");
  simdjson::padded_string json(header, size_t(header_len));
  if (json.data() == nullptr) return fail(file_name + ": cannot allocate the header buffer");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json).get(root); err != simdjson::SUCCESS)
    return fail(file_name + ": header is not valid JSON: " + simdjson::error_message(err));
  simdjson::dom::object root_obj;
  if (root.get_object().get(root_obj) != simdjson::SUCCESS)
    return fail(file_name + ": header is not a JSON object");

  const std::byte* data = image.data() + 8 + header_len;
  const uint64_t data_size = image.size() - 8 - header_len;
  header_parser hp(file_name, data_size);

  safetensors_file out;
  std::vector<tensor_span> spans;
  std::set<std::string_view> names;  // views into the padded header, alive until we return
  bool seen_metadata = false;
  for (auto field : root_obj) {
    if (field.key == "__metadata__") {
      if (seen_metadata) return fail(file_name + ": __metadata__ appears twice");
      seen_metadata = true;
      if (auto r = hp.parse_metadata(field.value, out.metadata); !r) return r.err();
      continue;
    }
    if (!names.insert(field.key).second)
      return fail(file_name + ": tensor " + quote_name(field.key) + " appears twice");
    tensor_view view;
    tensor_span span{};
    if (auto r = hp.parse_tensor(field.key, field.value, view, span); !r) return r.err();
    span.index = out.tensors.size();
    spans.push_back(span);
    out.tensors.push_back(std::move(view));
  }

  // Two tensors may not share bytes; empty tensors take no bytes and cannot overlap anything.
  std::sort(spans.begin(), spans.end(), [](const tensor_span& a, const tensor_span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const tensor_span* furthest = nullptr;  // the earlier non-empty tensor that reaches furthest
  for (const auto& s : spans) {
    if (s.begin == s.end) continue;
    if (furthest != nullptr && s.begin < furthest->end) {
      const auto& a = out.tensors[furthest->index];
      const auto& b = out.tensors[s.index];
      return fail(file_name + ": tensor " + quote_name(b.name) + ": data_offsets " +
                  format_list(std::vector<uint64_t>{s.begin, s.end}) + " overlap tensor " +
                  quote_name(a.name) + " at " +
                  format_list(std::vector<uint64_t>{furthest->begin, furthest->end}));
    }
    if (furthest == nullptr || s.end > furthest->end) furthest = &s;
  }
  for (const auto& s : spans) out.tensors[s.index].data = data + s.begin;
  return out;
}

expected<safetensors_file> open_safetensors(const std::string& path, load_mode mode) {
  auto mapped = mapped_file::open(path, mode);
  if (!mapped) return mapped.err();
  auto file = std::make_shared<const mapped_file>(std::move(*mapped));
  auto parsed = parse_safetensors(file->bytes(), path);
  if (!parsed) return parsed.err();
  parsed->file = std::move(file);
  return parsed;
}

}  // namespace troupe::engine
