// GGUF reader: walks the header, the typed metadata and the tensor infos with a bounds-checked
// cursor; every count is checked against the bytes left before anything is allocated for it.
#include "engine/model/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "engine/model/format_checks.hpp"
#include "engine/model/gguf_types.hpp"

namespace troupe::engine {

namespace {

using detail::format_list;
using detail::gguf_type;
using detail::gguf_type_name;
using detail::quote_name;

static_assert(std::endian::native == std::endian::little, "GGUF is read in place as little-endian");

// The smallest encoding of one value of each type, to refuse counts the remaining bytes cannot hold.
uint64_t min_encoded_size(uint32_t t) {
  switch (gguf_type(t)) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean: return 1;
    case gguf_type::u16: case gguf_type::i16: return 2;
    case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
    case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: return 8;
    case gguf_type::string: return 8;      // the length alone
    case gguf_type::array: return 4 + 8;   // element type and count
  }
  return 1;
}

constexpr uint64_t min_kv_size = 8 + 4 + 1;              // key length, value type, one byte
constexpr uint64_t min_tensor_info_size = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, ne[0], type, offset
constexpr uint64_t max_key_length = 65535;                // the spec's limit on key names

struct tensor_info {
  uint64_t offset;
  size_t index;
};

class gguf_reader {
 public:
  gguf_reader(std::span<const std::byte> image, const std::string& file_name)
      : image_(image), file_name_(file_name) {}

  expected<gguf_file> parse() {
    gguf_file out;
    out.file_name = file_name_;
    uint32_t magic = 0;
    if (!read(magic)) return truncated("the magic number", 4);
    if (magic != detail::gguf_magic) return failure("not a GGUF file (bad magic number)");
    if (!read(out.version)) return truncated("the version", 4);
    if (out.version != 2 && out.version != 3) {
      if (__builtin_bswap32(out.version) == 2 || __builtin_bswap32(out.version) == 3)
        return failure("big-endian GGUF files are not supported");
      return failure("GGUF version " + std::to_string(out.version) +
                     " is not supported (versions 2 and 3 are)");
    }
    uint64_t tensor_count = 0, kv_count = 0;
    if (!read(tensor_count)) return truncated("the tensor count", 8);
    if (!read(kv_count)) return truncated("the metadata count", 8);
    if (tensor_count > gguf_max_tensors)
      return failure("tensor_count " + std::to_string(tensor_count) + " exceeds the limit of " +
                     std::to_string(gguf_max_tensors));
    if (kv_count > gguf_max_kv)
      return failure("kv_count " + std::to_string(kv_count) + " exceeds the limit of " +
                     std::to_string(gguf_max_kv));
    // Both are capped above, so these products cannot overflow.
    if (kv_count * min_kv_size + tensor_count * min_tensor_info_size > left())
      return failure("kv_count " + std::to_string(kv_count) + " and tensor_count " +
                     std::to_string(tensor_count) + " cannot fit in the " + std::to_string(left()) +
                     " bytes left");

    for (uint64_t i = 0; i < kv_count; ++i)
      if (auto r = read_kv(out); !r) return r.err();
    if (auto r = apply_alignment(out); !r) return r.err();

    out.tensors.reserve(tensor_count);
    std::unordered_set<std::string> names;
    for (uint64_t i = 0; i < tensor_count; ++i) {
      auto t = read_tensor_info(i, out.alignment);
      if (!t) return t.err();
      if (!names.insert(t->name).second)
        return failure("tensor " + quote_name(t->name) + " appears twice");
      out.tensors.push_back(std::move(*t));
    }
    if (auto r = place_tensors(out); !r) return r.err();
    return out;
  }

 private:
  [[nodiscard]] uint64_t left() const { return image_.size() - pos_; }

  [[nodiscard]] error failure(const std::string& what) const {
    return fail(file_name_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  [[nodiscard]] error truncated(const std::string& what, uint64_t need) const {
    return failure("file ends inside " + what + ": " + std::to_string(need) + " bytes needed, " +
                   std::to_string(left()) + " left");
  }

  template <class T>
  [[nodiscard]] bool read(T& out) {
    if (left() < sizeof(T)) return false;
    std::memcpy(&out, image_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // A GGUF string: u64 length, then that many bytes (not NUL-terminated).
  expected<std::string> read_string(const std::string& what, uint64_t max_len) {
    uint64_t len = 0;
    if (!read(len)) return truncated(what + " length", 8);
    if (len > max_len)
      return failure(what + " length " + std::to_string(len) + " exceeds the limit of " +
                     std::to_string(max_len));
    if (len > left())
      return failure(what + " length " + std::to_string(len) + " exceeds the " +
                     std::to_string(left()) + " bytes left");
    std::string s(reinterpret_cast<const char*>(image_.data() + pos_), size_t(len));
    pos_ += len;
    return s;
  }

  template <class T>
  expected<gguf_value> read_scalar(const std::string& what) {
    T v{};
    if (!read(v)) return truncated(what, sizeof(T));
    return gguf_value{v};
  }

  // `what` names the key for messages; `depth` is how many arrays enclose this value.
  expected<gguf_value> read_value(uint32_t type, const std::string& what, uint32_t depth) {
    switch (gguf_type(type)) {
      case gguf_type::u8: return read_scalar<uint8_t>(what);
      case gguf_type::i8: return read_scalar<int8_t>(what);
      case gguf_type::u16: return read_scalar<uint16_t>(what);
      case gguf_type::i16: return read_scalar<int16_t>(what);
      case gguf_type::u32: return read_scalar<uint32_t>(what);
      case gguf_type::i32: return read_scalar<int32_t>(what);
      case gguf_type::u64: return read_scalar<uint64_t>(what);
      case gguf_type::i64: return read_scalar<int64_t>(what);
      case gguf_type::f32: return read_scalar<float>(what);
      case gguf_type::f64: return read_scalar<double>(what);
      case gguf_type::boolean: {
        uint8_t b = 0;
        if (!read(b)) return truncated(what, 1);
        if (b > 1) return failure(what + ": bool value " + std::to_string(b) + " is not 0 or 1");
        return gguf_value{b == 1};
      }
      case gguf_type::string: {
        auto s = read_string(what + ": string", gguf_max_string);
        if (!s) return s.err();
        return gguf_value{std::move(*s)};
      }
      case gguf_type::array: return read_array(what, depth);
    }
    return failure(what + ": unknown value type " + std::to_string(type));
  }

  expected<gguf_value> read_array(const std::string& what, uint32_t depth) {
    if (depth + 1 > gguf_max_nesting)
      return failure(what + ": arrays nested more than " + std::to_string(gguf_max_nesting) +
                     " levels deep");
    uint32_t elem_type = 0;
    uint64_t count = 0;
    if (!read(elem_type)) return truncated(what + ": array element type", 4);
    if (elem_type >= detail::gguf_type_count)
      return failure(what + ": unknown array element type " + std::to_string(elem_type));
    if (!read(count)) return truncated(what + ": array count", 8);
    if (count > gguf_max_array)
      return failure(what + ": array count " + std::to_string(count) + " exceeds the limit of " +
                     std::to_string(gguf_max_array));
    if (count > left() / min_encoded_size(elem_type))
      return failure(what + ": array of " + std::to_string(count) + " " + gguf_type_name(elem_type) +
                     " cannot fit in the " + std::to_string(left()) + " bytes left");
    if (count > values_left_)
      return failure(what + ": array of " + std::to_string(count) + " elements exceeds the limit of " +
                     std::to_string(gguf_max_metadata_values) + " array elements in all the metadata");
    values_left_ -= count;
    gguf_array items;
    items.reserve(size_t(count));
    for (uint64_t i = 0; i < count; ++i) {
      auto v = read_value(elem_type, what, depth + 1);
      if (!v) return v.err();
      items.push_back(std::move(*v));
    }
    return gguf_value{std::move(items)};
  }

  expected<void> read_kv(gguf_file& out) {
    auto key = read_string("metadata key", max_key_length);
    if (!key) return key.err();
    if (key->empty()) return failure("empty metadata key");
    const std::string what = "metadata key " + quote_name(*key);
    if (out.metadata.count(*key) != 0) return failure(what + " appears twice");
    uint32_t type = 0;
    if (!read(type)) return truncated(what + ": value type", 4);
    if (type >= detail::gguf_type_count)
      return failure(what + ": unknown value type " + std::to_string(type));
    auto value = read_value(type, what, 0);
    if (!value) return value.err();
    out.metadata.emplace(std::move(*key), std::move(*value));
    return {};
  }

  expected<void> apply_alignment(gguf_file& out) {
    const auto it = out.metadata.find("general.alignment");
    if (it == out.metadata.end()) return {};
    const auto* a = std::get_if<uint32_t>(&it->second.v);
    if (a == nullptr)
      return failure("general.alignment is a " + detail::gguf_value_type_name(it->second) +
                     ", expected u32");
    if (*a == 0 || !std::has_single_bit(*a))
      return failure("general.alignment " + std::to_string(*a) + " is not a power of two");
    out.alignment = *a;
    return {};
  }

  expected<tensor_view> read_tensor_info(uint64_t i, uint32_t alignment) {
    auto name = read_string("tensor #" + std::to_string(i) + " name", gguf_max_string);
    if (!name) return name.err();
    const std::string what = "tensor " + quote_name(*name);
    uint32_t n_dims = 0;
    if (!read(n_dims)) return truncated(what + ": n_dims", 4);
    if (n_dims < 1 || n_dims > gguf_max_dims)
      return failure(what + ": n_dims " + std::to_string(n_dims) + " is not in 1.." +
                     std::to_string(gguf_max_dims));
    std::vector<int64_t> ne(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = 0;
      if (!read(v)) return truncated(what + ": ne", 8);
      if (v > uint64_t(std::numeric_limits<int64_t>::max()))
        return failure(what + ": ne[" + std::to_string(d) + "] = " + std::to_string(v) +
                       " is too large");
      ne[d] = int64_t(v);
    }
    uint32_t ggml_type = 0;
    if (!read(ggml_type)) return truncated(what + ": type", 4);
    uint64_t offset = 0;
    if (!read(offset)) return truncated(what + ": offset", 8);

    const auto type = detail::dtype_from_ggml(ggml_type);
    if (!type)
      return failure(what + ": unsupported ggml type " + std::to_string(ggml_type) +
                     " (supported: 0 F32, 1 F16, 8 Q8_0, 30 BF16)");
    const auto numel = detail::checked_numel(ne);
    if (!numel) return failure(what + ": ne " + format_list(ne) + " has too many elements");
    uint64_t block = 1, block_bytes = 4;
    if (*type == dtype::f16 || *type == dtype::bf16) block_bytes = 2;
    if (*type == dtype::q8_0) {
      block = q8_0_block;
      block_bytes = sizeof(block_q8_0);
      if (ne[0] % q8_0_block != 0)
        return failure(what + ": Q8_0 row length ne[0] = " + std::to_string(ne[0]) +
                       " is not a multiple of " + std::to_string(q8_0_block));
    }
    const auto nbytes = detail::checked_mul(*numel / block, block_bytes);
    if (!nbytes || *nbytes > image_.size())
      return failure(what + ": ne " + format_list(ne) + " needs more bytes than the file has");
    if (offset % alignment != 0)
      return failure(what + ": offset " + std::to_string(offset) + " is not a multiple of the alignment " +
                     std::to_string(alignment));

    tensor_view t;
    t.name = std::move(*name);
    t.type = *type;
    t.shape.assign(ne.rbegin(), ne.rend());  // ne[0] is contiguous; our shapes are row-major
    t.nbytes = size_t(*nbytes);
    offsets_.push_back(tensor_info{offset, size_t(i)});
    return t;
  }

  // Data starts at the first multiple of the alignment after the infos; offsets are relative to it.
  expected<void> place_tensors(gguf_file& out) {
    if (out.tensors.empty()) return {};
    const uint64_t data_start = (pos_ + out.alignment - 1) / out.alignment * out.alignment;
    if (data_start > image_.size())
      return failure("the data section would start at byte " + std::to_string(data_start) +
                     ", past the end of the file (" + std::to_string(image_.size()) + " bytes)");
    const uint64_t data_size = image_.size() - data_start;
    for (const auto& info : offsets_) {
      const auto& t = out.tensors[info.index];
      if (info.offset > data_size || t.nbytes > data_size - info.offset)
        return fail(file_name_ + ": tensor " + quote_name(t.name) + ": data at offset " +
                    std::to_string(info.offset) + " (" + std::to_string(t.nbytes) +
                    " bytes) lies beyond the end of the data section (" +
                    std::to_string(data_size) + " bytes)");
    }
    std::vector<tensor_info> sorted = offsets_;
    std::sort(sorted.begin(), sorted.end(), [&out](const tensor_info& a, const tensor_info& b) {
      if (a.offset != b.offset) return a.offset < b.offset;
      return out.tensors[a.index].nbytes < out.tensors[b.index].nbytes;
    });
    const tensor_info* furthest = nullptr;  // the earlier non-empty tensor that reaches furthest
    uint64_t furthest_end = 0;
    for (const auto& s : sorted) {
      const uint64_t end = s.offset + out.tensors[s.index].nbytes;
      if (end == s.offset) continue;
      if (furthest != nullptr && s.offset < furthest_end)
        return fail(file_name_ + ": tensor " + quote_name(out.tensors[s.index].name) +
                    ": data at offset " + std::to_string(s.offset) + " overlaps tensor " +
                    quote_name(out.tensors[furthest->index].name) + " at [" +
                    std::to_string(furthest->offset) + ", " + std::to_string(furthest_end) + ")");
      if (furthest == nullptr || end > furthest_end) {
        furthest = &s;
        furthest_end = end;
      }
    }
    for (const auto& info : offsets_)
      out.tensors[info.index].data = image_.data() + data_start + info.offset;
    return {};
  }

  std::span<const std::byte> image_;
  const std::string& file_name_;
  size_t pos_ = 0;
  uint64_t values_left_ = gguf_max_metadata_values;
  std::vector<tensor_info> offsets_;  // parallel to the tensors, in file order
};

template <class T>
constexpr bool is_integer_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Any integer alternative as int64; nullopt for other types or a u64 above INT64_MAX.
std::optional<int64_t> as_int(const gguf_value& v) {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (is_integer_v<T>) {
          if constexpr (std::is_same_v<T, uint64_t>) {
            if (x > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
          }
          return int64_t(x);
        } else {
          return std::nullopt;
        }
      },
      v.v);
}

std::optional<double> as_float(const gguf_value& v) {
  if (const auto* f = std::get_if<float>(&v.v)) return double(*f);
  if (const auto* d = std::get_if<double>(&v.v)) return *d;
  return std::visit(
      [](const auto& x) -> std::optional<double> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (is_integer_v<T>) return double(x);
        else return std::nullopt;
      },
      v.v);
}

}  // namespace

expected<gguf_file> parse_gguf(std::span<const std::byte> image, const std::string& file_name) {
  return gguf_reader(image, file_name).parse();
}

expected<gguf_file> open_gguf(const std::string& path, load_mode mode) {
  auto mapped = mapped_file::open(path, mode);
  if (!mapped) return mapped.err();
  auto file = std::make_shared<const mapped_file>(std::move(*mapped));
  auto parsed = parse_gguf(file->bytes(), path);
  if (!parsed) return parsed.err();
  parsed->file = std::move(file);
  return parsed;
}

const tensor_view* gguf_file::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const gguf_value* gguf_file::get(const std::string& key) const {
  const auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

namespace {

// Finds `key` or explains why the value cannot be had as `expected_type`.
struct lookup {
  const gguf_file& f;
  const std::string& key;

  [[nodiscard]] error missing() const {
    return fail(f.file_name + ": metadata key " + quote_name(key) + " not found");
  }
  [[nodiscard]] error wrong_type(const gguf_value& v, const char* expected_type) const {
    return fail(f.file_name + ": metadata key " + quote_name(key) + " is " +
                detail::gguf_value_type_name(v) + ", expected " + expected_type);
  }
};

}  // namespace

expected<std::string> gguf_file::get_string(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  if (const auto* s = std::get_if<std::string>(&v->v)) return *s;
  return l.wrong_type(*v, "a string");
}

expected<int64_t> gguf_file::get_int(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  if (auto i = as_int(*v)) return *i;
  return l.wrong_type(*v, "an integer that fits in int64");
}

expected<double> gguf_file::get_float(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  if (auto d = as_float(*v)) return *d;
  return l.wrong_type(*v, "a number");
}

expected<bool> gguf_file::get_bool(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  if (const auto* b = std::get_if<bool>(&v->v)) return *b;
  return l.wrong_type(*v, "a bool");
}

expected<std::vector<std::string>> gguf_file::get_strings(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  const auto* a = std::get_if<gguf_array>(&v->v);
  if (a == nullptr) return l.wrong_type(*v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(a->size());
  for (const auto& e : *a) {
    const auto* s = std::get_if<std::string>(&e.v);
    if (s == nullptr) return l.wrong_type(*v, "an array of strings");
    out.push_back(*s);
  }
  return out;
}

expected<std::vector<int64_t>> gguf_file::get_ints(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  const auto* a = std::get_if<gguf_array>(&v->v);
  if (a == nullptr) return l.wrong_type(*v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(a->size());
  for (const auto& e : *a) {
    const auto i = as_int(e);
    if (!i) return l.wrong_type(*v, "an array of integers that fit in int64");
    out.push_back(*i);
  }
  return out;
}

expected<std::vector<double>> gguf_file::get_floats(const std::string& key) const {
  const lookup l{*this, key};
  const auto* v = get(key);
  if (v == nullptr) return l.missing();
  const auto* a = std::get_if<gguf_array>(&v->v);
  if (a == nullptr) return l.wrong_type(*v, "an array of numbers");
  std::vector<double> out;
  out.reserve(a->size());
  for (const auto& e : *a) {
    const auto d = as_float(e);
    if (!d) return l.wrong_type(*v, "an array of numbers");
    out.push_back(*d);
  }
  return out;
}

}  // namespace troupe::engine
