// Tests for the GGUF reader and writer: round trips of every metadata type and tensor type through
// real files, hand-built images checked byte by byte, and corrupt inputs each naming the culprit.
#include "engine/model/gguf.hpp"

#include <gtest/gtest.h>

#include "tests/engine/model/file_test_util.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) { return test_util::tmp_path("gguf", name); }
using test_util::as_bytes;
using test_util::read_all;

// Builds GGUF images by hand, independently of the writer, so tests can say exactly what is where.
struct builder {
  std::vector<std::byte> b;

  template <class T>
  builder& put(T v) {
    const auto old = b.size();
    b.resize(old + sizeof(T));
    std::memcpy(b.data() + old, &v, sizeof(T));
    return *this;
  }
  builder& u32(uint32_t v) { return put(v); }
  builder& u64(uint64_t v) { return put(v); }
  builder& str(std::string_view s) {
    u64(s.size());
    for (char c : s) b.push_back(std::byte(c));
    return *this;
  }
  builder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(tensors).u64(kvs);
  }
  builder& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  builder& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (auto n : ne) u64(n);
    return u32(type).u64(offset);
  }
  builder& pad_to(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(std::byte{0});
    return *this;
  }
  builder& data(size_t n, std::byte fill = std::byte{0x11}) {
    b.insert(b.end(), n, fill);
    return *this;
  }
};

std::string parse_error(const std::vector<std::byte>& img) {
  auto r = parse_gguf(img, "model.gguf");
  if (r) return "(parsed without error)";
  return r.message();
}

bool same(const gguf_value& a, const gguf_value& b) {
  if (a.v.index() != b.v.index()) return false;
  if (const auto* x = std::get_if<gguf_array>(&a.v)) {
    const auto& y = std::get<gguf_array>(b.v);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i)
      if (!same((*x)[i], y[i])) return false;
    return true;
  }
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf_array>) {
          return false;  // handled above
        } else {
          return x == std::get<T>(b.v);
        }
      },
      a.v);
}

gguf_value arr(std::initializer_list<gguf_value> items) { return gguf_value{gguf_array(items)}; }

std::map<std::string, gguf_value> every_metadata_type() {
  return {
      {"t.u8", {uint8_t(200)}},
      {"t.i8", {int8_t(-100)}},
      {"t.u16", {uint16_t(60000)}},
      {"t.i16", {int16_t(-30000)}},
      {"t.u32", {uint32_t(4000000000u)}},
      {"t.i32", {int32_t(-2000000000)}},
      {"t.u64", {uint64_t(18000000000000000000ull)}},
      {"t.i64", {int64_t(-9000000000000000000ll)}},
      {"t.f32", {1.25f}},
      {"t.f64", {-2.5e300}},
      {"t.bool", {true}},
      {"t.bool_false", {false}},
      {"t.string", {std::string("h\xc3\xa9llo\0world", 12)}},
      {"t.empty_string", {std::string()}},
      {"a.u8", arr({{uint8_t(1)}, {uint8_t(2)}})},
      {"a.i8", arr({{int8_t(-1)}})},
      {"a.u16", arr({{uint16_t(1)}})},
      {"a.i16", arr({{int16_t(-1)}})},
      {"a.u32", arr({{uint32_t(7)}, {uint32_t(8)}})},
      {"a.i32", arr({{int32_t(-7)}, {int32_t(8)}, {int32_t(9)}})},
      {"a.u64", arr({{uint64_t(1)}})},
      {"a.i64", arr({{int64_t(-1)}})},
      {"a.f32", arr({{0.5f}, {-1.5f}})},
      {"a.f64", arr({{0.25}})},
      {"a.bool", arr({{true}, {false}})},
      {"a.string", arr({{std::string("a")}, {std::string("")}, {std::string("<0x0A>")}})},
      {"a.empty", arr({})},
      {"a.nested", arr({arr({{int32_t(1)}, {int32_t(2)}}), arr({{std::string("x")}}), arr({})})},
      {"a.deep", arr({arr({arr({arr({{1.5f}})})})})},
  };
}

// Q8_0 data for `rows` x `cols`: each block a scale and 32 quantized values.
std::vector<std::byte> q8_0_data(int64_t rows, int64_t cols) {
  std::vector<block_q8_0> blocks(size_t(rows * cols / q8_0_block));
  for (size_t i = 0; i < blocks.size(); ++i) {
    blocks[i].d = f32_to_f16(0.5f + float(i));
    for (int j = 0; j < 32; ++j) blocks[i].qs[j] = int8_t(j - 16 + int(i));
  }
  return as_bytes(blocks);
}

std::vector<gguf_tensor_entry> sample_tensors() {
  std::vector<gguf_tensor_entry> t;
  t.push_back({"token_embd.weight", dtype::f32, {3}, as_bytes(std::vector<float>{1, -2, 3})});
  t.push_back({"f16", dtype::f16, {2, 3}, as_bytes(std::vector<uint16_t>{1, 2, 3, 4, 5, 6})});
  t.push_back({"bf16", dtype::bf16, {2, 2, 2}, as_bytes(std::vector<uint16_t>{1, 2, 3, 4, 5, 6, 7, 8})});
  t.push_back({"blk.0.attn_q.weight", dtype::q8_0, {2, 64}, q8_0_data(2, 64)});
  t.push_back({"four_d", dtype::f32, {1, 1, 2, 3}, as_bytes(std::vector<float>{1, 2, 3, 4, 5, 6})});
  t.push_back({"empty", dtype::f32, {0, 4}, {}});
  t.push_back({"last", dtype::f32, {8}, as_bytes(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8})});
  return t;
}

void expect_round_trip(uint32_t alignment) {
  const auto meta = every_metadata_type();
  const auto tensors = sample_tensors();
  const auto path = tmp_path("round_trip_" + std::to_string(alignment) + ".gguf");
  auto w = write_gguf(path, meta, tensors, alignment);
  ASSERT_TRUE(w) << w.message();

  auto f = open_gguf(path);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->version, 3u);
  EXPECT_EQ(f->alignment, alignment);
  EXPECT_EQ(f->file_name, path);
  EXPECT_EQ(f->metadata.size(), meta.size() + (alignment != 32 ? 1 : 0));
  for (const auto& [key, value] : meta) {
    const auto* got = f->get(key);
    ASSERT_NE(got, nullptr) << key;
    EXPECT_TRUE(same(*got, value)) << key;
  }
  if (alignment != 32) {
    EXPECT_EQ(f->get_int("general.alignment").value(), int64_t(alignment));
  }

  const auto* base = f->file->bytes().data();
  ASSERT_EQ(f->tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& want = tensors[i];
    const auto& got = f->tensors[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.shape, want.shape);
    ASSERT_EQ(got.nbytes, want.data.size());
    if (got.nbytes > 0) {
      EXPECT_EQ(std::memcmp(got.data, want.data.data(), got.nbytes), 0);
    }
    EXPECT_EQ(size_t(got.data - base) % alignment, 0u);
    EXPECT_EQ(f->find(want.name), &got);
  }
  EXPECT_EQ(f->find("nope"), nullptr);
}

TEST(Gguf, RoundTripsEveryTypeWithDefaultAlignment) { expect_round_trip(32); }
TEST(Gguf, RoundTripsEveryTypeWithOtherAlignments) {
  expect_round_trip(64);
  expect_round_trip(8);
}

TEST(Gguf, WriterLayoutMatchesTheSpec) {
  const auto path = tmp_path("layout.gguf");
  ASSERT_TRUE(write_gguf(path, {{"general.architecture", {std::string("llama")}}, {"n", {uint32_t(5)}}},
                         {{"w", dtype::f32, {2, 3}, as_bytes(std::vector<float>{1, 2, 3, 4, 5, 6})},
                          {"v", dtype::bf16, {1}, as_bytes(std::vector<uint16_t>{7})}}));
  builder want;
  want.header(2, 2).str("general.architecture").u32(8).str("llama").kv_u32("n", 5);
  want.tensor("w", {3, 2}, 0, 0).tensor("v", {1}, 30, 32).pad_to(32);
  for (float x : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) want.put(x);
  want.pad_to(32).put(uint16_t(7)).pad_to(32);
  EXPECT_EQ(read_all(path), want.b);
}

TEST(Gguf, ReadsHandBuiltVersion2FileWithReversedNe) {
  builder b;
  b.header(2, 1, 2).str("general.name").u32(8).str("tiny");
  b.tensor("m", {4, 2}, 0, 0).tensor("q", {64, 1}, 8, 64).pad_to(32);
  const size_t data_start = b.b.size();
  b.data(32, std::byte{1}).data(32, std::byte{0}).data(68, std::byte{3});
  auto f = parse_gguf(b.b, "v2.gguf");
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->version, 2u);
  EXPECT_EQ(f->get_string("general.name").value(), "tiny");
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(f->tensors[0].nbytes, 32u);
  EXPECT_EQ(f->tensors[0].data, b.b.data() + data_start);
  EXPECT_EQ(f->tensors[1].type, dtype::q8_0);
  EXPECT_EQ(f->tensors[1].shape, (std::vector<int64_t>{1, 64}));
  EXPECT_EQ(f->tensors[1].nbytes, 68u);
  EXPECT_EQ(f->tensors[1].data, b.b.data() + data_start + 64);
  EXPECT_EQ(f->file, nullptr);
}

TEST(Gguf, TypedGettersConvertWhereTheValueFitsAndNameKeyAndType) {
  const auto path = tmp_path("getters.gguf");
  ASSERT_TRUE(write_gguf(path, every_metadata_type(), {}));
  auto f = open_gguf(path);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->get_int("t.u8").value(), 200);
  EXPECT_EQ(f->get_int("t.i16").value(), -30000);
  EXPECT_EQ(f->get_int("t.u32").value(), 4000000000);
  EXPECT_EQ(f->get_int("t.i64").value(), -9000000000000000000ll);
  EXPECT_EQ(f->get_float("t.f32").value(), 1.25);
  EXPECT_EQ(f->get_float("t.f64").value(), -2.5e300);
  EXPECT_EQ(f->get_float("t.i32").value(), -2000000000.0);
  EXPECT_EQ(f->get_bool("t.bool").value(), true);
  EXPECT_EQ(f->get_bool("t.bool_false").value(), false);
  EXPECT_EQ(f->get_string("t.string").value(), std::string("h\xc3\xa9llo\0world", 12));
  EXPECT_EQ(f->get_strings("a.string").value(), (std::vector<std::string>{"a", "", "<0x0A>"}));
  EXPECT_EQ(f->get_ints("a.i32").value(), (std::vector<int64_t>{-7, 8, 9}));
  EXPECT_EQ(f->get_ints("a.u32").value(), (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(f->get_floats("a.f32").value(), (std::vector<double>{0.5, -1.5}));
  EXPECT_EQ(f->get_floats("a.u8").value(), (std::vector<double>{1, 2}));
  EXPECT_TRUE(f->get_strings("a.empty").value().empty());

  auto expect_error = [&f](auto result, const std::string& text) {
    ASSERT_FALSE(result) << text;
    EXPECT_EQ(result.message(), f->file_name + ": " + text);
  };
  expect_error(f->get_int("t.u64"), "metadata key 't.u64' is u64, expected an integer that fits in int64");
  expect_error(f->get_int("t.bool"), "metadata key 't.bool' is bool, expected an integer that fits in int64");
  expect_error(f->get_int("t.f32"), "metadata key 't.f32' is f32, expected an integer that fits in int64");
  expect_error(f->get_string("t.u32"), "metadata key 't.u32' is u32, expected a string");
  expect_error(f->get_float("t.string"), "metadata key 't.string' is string, expected a number");
  expect_error(f->get_bool("t.u8"), "metadata key 't.u8' is u8, expected a bool");
  expect_error(f->get_strings("a.i32"), "metadata key 'a.i32' is array of i32, expected an array of strings");
  expect_error(f->get_ints("t.i32"), "metadata key 't.i32' is i32, expected an array of integers");
  expect_error(f->get_ints("a.f32"),
               "metadata key 'a.f32' is array of f32, expected an array of integers that fit in int64");
  expect_error(f->get_floats("a.nested"),
               "metadata key 'a.nested' is array of array of i32, expected an array of numbers");
  expect_error(f->get_string("no.such.key"), "metadata key 'no.such.key' not found");
}

TEST(Gguf, EveryTruncationIsAnError) {
  const auto path = tmp_path("truncate.gguf");
  auto meta = every_metadata_type();
  ASSERT_TRUE(write_gguf(path, meta, sample_tensors()));
  const auto full = read_all(path);
  // The last tensor fills its aligned slot, so every byte of the file is needed.
  auto parsed = parse_gguf(full, "t");
  ASSERT_TRUE(parsed) << parsed.message();
  const auto& last = parsed->tensors.back();
  ASSERT_EQ(last.data + last.nbytes, full.data() + full.size());
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    auto r = parse_gguf(cut, "cut.gguf");
    ASSERT_FALSE(r) << "accepted a file cut to " << n << " of " << full.size() << " bytes";
    EXPECT_EQ(r.message().rfind("cut.gguf: ", 0), 0u) << r.message();
  }
}

struct bad_case {
  std::string name;
  builder image;
  std::string expect;  // a part of the message
};

std::vector<bad_case> bad_cases() {
  std::vector<bad_case> c;
  auto add = [&c](std::string name, builder b, std::string expect) {
    c.push_back({std::move(name), std::move(b), std::move(expect)});
  };
  add("bad magic", builder{}.u32(0x46554748).u32(3).u64(0).u64(0), "not a GGUF file (bad magic number)");
  add("v1", builder{}.header(0, 0, 1), "GGUF version 1 is not supported");
  add("v4", builder{}.header(0, 0, 4), "GGUF version 4 is not supported");
  add("big endian", builder{}.header(0, 0, 0x03000000), "big-endian GGUF files are not supported");
  add("huge kv_count", builder{}.header(0, uint64_t(1) << 40), "kv_count 1099511627776 exceeds the limit");
  add("kv_count beyond the file", builder{}.header(0, 1000).kv_u32("a", 1),
      "kv_count 1000 and tensor_count 0 cannot fit in the 17 bytes left");
  add("huge tensor_count", builder{}.header(uint64_t(-1), 0), "tensor_count 18446744073709551615 exceeds");
  add("tensor_count beyond the file", builder{}.header(10, 0).tensor("a", {4}, 0, 0),
      "tensor_count 10 cannot fit");
  add("huge key length", builder{}.header(0, 1).u64(uint64_t(1) << 40).data(8),
      "metadata key length 1099511627776 exceeds the limit of 65535");
  add("key longer than the file", builder{}.header(0, 1).u64(100).data(8),
      "metadata key length 100 exceeds the 8 bytes left");
  add("empty key", builder{}.header(0, 1).str("").u32(0).put(uint8_t(1)), "empty metadata key");
  add("huge string value", builder{}.header(0, 1).str("s").u32(8).u64(uint64_t(1) << 40).data(8),
      "metadata key 's': string length 1099511627776 exceeds the limit");
  add("string value beyond the file", builder{}.header(0, 1).str("s").u32(8).u64(9).data(8),
      "metadata key 's': string length 9 exceeds the 8 bytes left");
  add("huge array count", builder{}.header(0, 1).str("arr").u32(9).u32(0).u64(uint64_t(1) << 40).data(8),
      "metadata key 'arr': array count 1099511627776 exceeds the limit");
  add("array count beyond the file", builder{}.header(0, 1).str("arr").u32(9).u32(4).u64(3).data(8),
      "metadata key 'arr': array of 3 u32 cannot fit in the 8 bytes left");
  add("array of strings beyond the file",
      builder{}.header(0, 1).str("arr").u32(9).u32(8).u64(1000).data(16),
      "metadata key 'arr': array of 1000 string cannot fit");
  {
    builder b;
    b.header(0, 1).str("deep").u32(9);
    for (int i = 0; i < 9; ++i) b.u32(9).u64(1);
    add("arrays nested too deep", b.data(16), "metadata key 'deep': arrays nested more than 8 levels deep");
  }
  add("nested array beyond the file",
      builder{}.header(0, 1).str("n").u32(9).u32(9).u64(1).u32(5).u64(1u << 20).data(8),
      "metadata key 'n': array of 1048576 i32 cannot fit");
  {
    // One element, then an array that alone would be allowed: together over the total.
    const uint64_t n = gguf_max_metadata_values;
    builder b;
    b.header(0, 2).str("a").u32(9).u32(0).u64(1).data(1).str("b").u32(9).u32(0).u64(n).data(n);
    add("too many array elements in all", b,
        "metadata key 'b': array of 16777216 elements exceeds the limit of 16777216 array elements in all");
  }
  add("unknown value type", builder{}.header(0, 1).str("k").u32(13).data(8), "metadata key 'k': unknown value type 13");
  add("unknown array type", builder{}.header(0, 1).str("k").u32(9).u32(77).u64(0),
      "metadata key 'k': unknown array element type 77");
  add("bad bool", builder{}.header(0, 1).str("b").u32(7).put(uint8_t(2)), "metadata key 'b': bool value 2 is not 0 or 1");
  add("duplicate key", builder{}.header(0, 2).kv_u32("k", 1).kv_u32("k", 2), "metadata key 'k' appears twice");
  add("alignment of the wrong type",
      builder{}.header(0, 1).str("general.alignment").u32(10).u64(64), "general.alignment is a u64, expected u32");
  add("alignment not a power of two", builder{}.header(0, 1).kv_u32("general.alignment", 48),
      "general.alignment 48 is not a power of two");
  add("alignment zero", builder{}.header(0, 1).kv_u32("general.alignment", 0),
      "general.alignment 0 is not a power of two");
  add("n_dims 0", builder{}.header(1, 0).str("t").u32(0).u32(0).u64(0).data(16), "tensor 't': n_dims 0 is not in 1..4");
  add("n_dims 5", builder{}.header(1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0).pad_to(32).data(4),
      "tensor 't': n_dims 5 is not in 1..4");
  add("huge n_dims", builder{}.header(1, 0).str("t").u32(0xffffffff).data(40), "tensor 't': n_dims 4294967295");
  add("ne overflow", builder{}.header(1, 0).tensor("t", {uint64_t(1) << 62, uint64_t(1) << 62}, 0, 0).pad_to(32).data(4),
      "tensor 't': ne [4611686018427387904, 4611686018427387904] has too many elements");
  // Found by the fuzzer: a zero dimension made the product 0, and numel() then overflowed.
  add("zero beside huge dims",
      builder{}.header(1, 0).tensor("t", {0, uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0).pad_to(32).data(4),
      "tensor 't': ne [0, 1099511627776, 1099511627776] has too many elements");
  add("ne beyond int64", builder{}.header(1, 0).tensor("t", {uint64_t(-1)}, 0, 0).pad_to(32).data(4),
      "tensor 't': ne[0] = 18446744073709551615 is too large");
  add("bytes overflow", builder{}.header(1, 0).tensor("t", {uint64_t(1) << 62}, 0, 0).pad_to(32).data(4),
      "tensor 't': ne [4611686018427387904] needs more bytes than the file has");
  add("q8_0 row not whole blocks", builder{}.header(1, 0).tensor("q", {33, 2}, 8, 0).pad_to(32).data(68),
      "tensor 'q': Q8_0 row length ne[0] = 33 is not a multiple of 32");
  add("unsupported ggml type", builder{}.header(1, 0).tensor("blk.0.ffn_up.weight", {32}, 2, 0).pad_to(32).data(18),
      "tensor 'blk.0.ffn_up.weight': unsupported ggml type 2");
  add("misaligned offset", builder{}.header(1, 0).tensor("t", {1}, 0, 4).pad_to(32).data(8),
      "tensor 't': offset 4 is not a multiple of the alignment 32");
  add("misaligned for a custom alignment",
      builder{}.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {1}, 0, 32).pad_to(64).data(64),
      "tensor 't': offset 32 is not a multiple of the alignment 64");
  add("data beyond the file", builder{}.header(1, 0).tensor("t", {4}, 0, 0).pad_to(32).data(15),
      "tensor 't': data at offset 0 (16 bytes) lies beyond the end of the data section (15 bytes)");
  add("offset beyond the file", builder{}.header(1, 0).tensor("t", {1}, 0, uint64_t(1) << 63).pad_to(32).data(4),
      "tensor 't': data at offset 9223372036854775808 (4 bytes) lies beyond");
  add("data section past the end", builder{}.header(1, 0).tensor("t", {0}, 0, 0),
      "the data section would start at byte");
  add("overlap", builder{}.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad_to(32).data(64),
      "tensor 'b': data at offset 32 overlaps tensor 'a' at [0, 64)");
  add("same offset", builder{}.header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 0).pad_to(32).data(32),
      "overlaps tensor");
  add("duplicate tensor", builder{}.header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad_to(32).data(64),
      "tensor 'a' appears twice");
  add("control bytes in a name", builder{}.header(1, 0).tensor("a\nb", {8}, 3, 0).pad_to(32).data(64),
      "tensor 'a\\x0ab': unsupported ggml type 3");
  return c;
}

TEST(Gguf, CorruptInputsAreRejectedWithTheCulpritNamed) {
  for (const auto& c : bad_cases()) {
    const auto msg = parse_error(c.image.b);
    EXPECT_EQ(msg.rfind("model.gguf: ", 0), 0u) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << "\nmessage: " << msg;
  }
}

TEST(Gguf, EmptyTensorsNeedNoDataAndAnEmptyFileHasNoTensors) {
  auto only_meta = parse_gguf(builder{}.header(0, 1).kv_u32("a", 1).b, "m");
  ASSERT_TRUE(only_meta) << only_meta.message();
  EXPECT_TRUE(only_meta->tensors.empty());
  auto zero = parse_gguf(builder{}.header(1, 0).tensor("z", {0, 3}, 1, 0).pad_to(32).b, "z");
  ASSERT_TRUE(zero) << zero.message();
  EXPECT_EQ(zero->tensors[0].shape, (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(zero->tensors[0].nbytes, 0u);
}

TEST(Gguf, WriterRefusesWhatCannotBeRead) {
  const auto path = tmp_path("refused.gguf");
  auto expect_error = [&path](const std::map<std::string, gguf_value>& meta,
                              const std::vector<gguf_tensor_entry>& t, uint32_t alignment,
                              const std::string& part) {
    auto r = write_gguf(path, meta, t, alignment);
    ASSERT_FALSE(r) << part;
    EXPECT_NE(r.message().find(part), std::string::npos) << r.message();
    EXPECT_FALSE(fs::exists(path));
  };
  const std::vector<std::byte> four(4);
  expect_error({{"m", arr({{uint32_t(1)}, {std::string("x")}})}}, {}, 32,
               "metadata key 'm': array mixes u32 and string (element 1)");
  gguf_value deep{int32_t(1)};
  for (int i = 0; i < 9; ++i) deep = arr({deep});
  expect_error({{"deep", deep}}, {}, 32, "metadata key 'deep': arrays nested more than 8 levels deep");
  expect_error({}, {{"s", dtype::f32, {}, four}}, 32, "tensor 's': rank 0 is not in 1..4");
  expect_error({}, {{"r", dtype::f32, {1, 1, 1, 1, 1}, four}}, 32, "tensor 'r': rank 5 is not in 1..4");
  expect_error({}, {{"q", dtype::q8_0, {1, 33}, std::vector<std::byte>(34)}}, 32,
               "tensor 'q': row length 33 does not fit q8_0 blocks");
  expect_error({}, {{"n", dtype::f16, {3}, four}}, 32, "tensor 'n': has 4 bytes of data, shape [3] of f16 needs 6");
  expect_error({}, {{"d", dtype::f32, {1}, four}, {"d", dtype::f32, {1}, four}}, 32, "tensor 'd': appears twice");
  expect_error({}, {}, 48, "alignment 48 is not a power of two");
  expect_error({{"general.alignment", {uint32_t(64)}}}, {}, 32, "general.alignment must be a u32 equal to the alignment 32");
  expect_error({{"", {uint32_t(64)}}}, {}, 32, "bad key length");
  auto r = write_gguf(tmp_path("no/such/dir/x.gguf"), {}, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("no/such/dir/x.gguf: cannot create"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace troupe::engine
