// GGUF v3 writer: metadata in map order with each value's own type kept, tensor infos with shapes
// reversed into ne order, then the data, each tensor starting at a multiple of the alignment.
#include <bit>
#include <cstring>
#include <set>

#include "engine/model/format_checks.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/gguf_types.hpp"
#include "engine/model/output_file.hpp"

namespace troupe::engine {

namespace {

using detail::gguf_type;
using detail::quote_name;

class gguf_encoder {
 public:
  explicit gguf_encoder(const std::string& path) : path_(path) {}

  template <class T>
  void put(T v) {
    const auto old = buf_.size();
    buf_.resize(old + sizeof(T));
    std::memcpy(buf_.data() + old, &v, sizeof(T));
  }

  void put_string(std::string_view s) {
    put(uint64_t(s.size()));
    buf_.append(s);
  }

  // Appends the value's payload (no type tag); `depth` counts the arrays around it.
  expected<void> put_value(const gguf_value& value, const std::string& what, uint32_t depth) {
    return std::visit(
        [&](const auto& x) -> expected<void> {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            if (x.size() > gguf_max_string)
              return fail(path_ + ": " + what + ": string of " + std::to_string(x.size()) +
                          " bytes exceeds the limit");
            put_string(x);
            return {};
          } else if constexpr (std::is_same_v<T, gguf_array>) {
            return put_array(x, what, depth);
          } else if constexpr (std::is_same_v<T, bool>) {
            put(uint8_t(x ? 1 : 0));
            return {};
          } else {
            put(x);
            return {};
          }
        },
        value.v);
  }

  std::string& bytes() { return buf_; }

 private:
  expected<void> put_array(const gguf_array& a, const std::string& what, uint32_t depth) {
    if (depth + 1 > gguf_max_nesting)
      return fail(path_ + ": " + what + ": arrays nested more than " +
                  std::to_string(gguf_max_nesting) + " levels deep");
    if (a.size() > gguf_max_array)
      return fail(path_ + ": " + what + ": array of " + std::to_string(a.size()) +
                  " elements exceeds the limit");
    // An empty array has no element type of its own; any type reads back as the same empty array.
    const gguf_type elem = a.empty() ? gguf_type::u8 : detail::gguf_type_of(a.front());
    put(uint32_t(elem));
    put(uint64_t(a.size()));
    for (size_t i = 0; i < a.size(); ++i) {
      if (detail::gguf_type_of(a[i]) != elem)
        return fail(path_ + ": " + what + ": array mixes " + detail::gguf_type_name(uint32_t(elem)) +
                    " and " + detail::gguf_type_name(uint32_t(detail::gguf_type_of(a[i]))) +
                    " (element " + std::to_string(i) + ")");
      if (auto r = put_value(a[i], what, depth + 1); !r) return r;
    }
    return {};
  }

  const std::string& path_;
  std::string buf_;
};

}  // namespace

expected<void> write_gguf(const std::string& path, const std::map<std::string, gguf_value>& metadata,
                          const std::vector<gguf_tensor_entry>& tensors, uint32_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment))
    return fail(path + ": alignment " + std::to_string(alignment) + " is not a power of two");
  // The reader learns the alignment from general.alignment, so a non-default one must be recorded.
  std::map<std::string, gguf_value> with_alignment;
  const auto* meta = &metadata;
  if (const auto it = metadata.find("general.alignment"); it != metadata.end()) {
    const auto* a = std::get_if<uint32_t>(&it->second.v);
    if (a == nullptr || *a != alignment)
      return fail(path + ": metadata general.alignment must be a u32 equal to the alignment " +
                  std::to_string(alignment));
  } else if (alignment != 32) {
    with_alignment = metadata;
    with_alignment.emplace("general.alignment", gguf_value{alignment});
    meta = &with_alignment;
  }
  if (meta->size() > gguf_max_kv) return fail(path + ": too many metadata entries");
  if (tensors.size() > gguf_max_tensors) return fail(path + ": too many tensors");

  gguf_encoder enc(path);
  enc.put(detail::gguf_magic);
  enc.put(uint32_t(3));
  enc.put(uint64_t(tensors.size()));
  enc.put(uint64_t(meta->size()));
  for (const auto& [key, value] : *meta) {
    const std::string what = "metadata key " + quote_name(key);
    if (key.empty() || key.size() > 65535) return fail(path + ": " + what + ": bad key length");
    enc.put_string(key);
    enc.put(uint32_t(detail::gguf_type_of(value)));
    if (auto r = enc.put_value(value, what, 0); !r) return r;
  }

  std::set<std::string_view> names;
  uint64_t offset = 0;
  std::vector<uint64_t> padded_sizes;
  for (const auto& t : tensors) {
    const std::string who = path + ": tensor " + quote_name(t.name) + ": ";
    if (t.name.size() > gguf_max_string) return fail(who + "name too long");
    if (!names.insert(t.name).second) return fail(who + "appears twice");
    if (t.shape.empty() || t.shape.size() > gguf_max_dims)
      return fail(who + "rank " + std::to_string(t.shape.size()) + " is not in 1.." +
                  std::to_string(gguf_max_dims));
    const auto numel = detail::checked_numel(t.shape);
    if (!numel) return fail(who + "shape " + detail::format_list(t.shape) + " is invalid");
    const int64_t cols = t.shape.back();
    const auto row = row_bytes(t.type, cols);
    if (!row)
      return fail(who + "row length " + std::to_string(cols) + " does not fit " +
                  std::string(dtype_name(t.type)) + " blocks");
    const uint64_t rows = cols == 0 ? 0 : *numel / uint64_t(cols);
    const auto nbytes = cols == 0 ? std::optional<uint64_t>(0) : detail::checked_mul(*row, rows);
    if (!nbytes || *nbytes != t.data.size())
      return fail(who + "has " + std::to_string(t.data.size()) + " bytes of data, shape " +
                  detail::format_list(t.shape) + " of " + std::string(dtype_name(t.type)) +
                  " needs " + (nbytes ? std::to_string(*nbytes) : std::string("more")));

    enc.put_string(t.name);
    enc.put(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) enc.put(uint64_t(*it));
    enc.put(detail::ggml_from_dtype(t.type));
    enc.put(offset);
    const uint64_t padded = (*nbytes + alignment - 1) / alignment * alignment;
    padded_sizes.push_back(padded);
    offset += padded;
  }
  std::string& head = enc.bytes();
  if (!tensors.empty()) head.append((alignment - head.size() % alignment) % alignment, '\0');

  detail::output_file out(path);
  if (auto r = out.open(); !r) return r;
  if (auto r = out.write(head.data(), head.size()); !r) return r;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& data = tensors[i].data;
    if (auto r = out.write(data.data(), data.size()); !r) return r;
    if (auto r = out.write_zeros(padded_sizes[i] - data.size()); !r) return r;
  }
  return out.close();
}

}  // namespace troupe::engine
