// Tests for the safetensors reader and writer and the file mapping under them: round trips through
// real files, the exact bytes the writer produces, and corrupt headers each naming the culprit.
#include "engine/model/safetensors.hpp"

#include <gtest/gtest.h>

#include "tests/engine/model/file_test_util.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) { return test_util::tmp_path("safetensors", name); }
using test_util::as_bytes;
using test_util::read_all;

// A safetensors image from header text and a data section, the way a hostile file could look.
std::vector<std::byte> image(const std::string& header, size_t data_size, uint64_t header_len) {
  std::vector<std::byte> out(8 + header.size() + data_size, std::byte{0x5a});
  std::memcpy(out.data(), &header_len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}
std::vector<std::byte> image(const std::string& header, size_t data_size) {
  return image(header, data_size, header.size());
}

std::string parse_error(const std::vector<std::byte>& img) {
  auto r = parse_safetensors(img, "model.safetensors");
  if (r) return "(parsed without error)";
  return r.message();
}

std::vector<safetensors_entry> sample_entries() {
  std::vector<safetensors_entry> e;
  e.push_back({"model.embed_tokens.weight", dtype::f32, {2, 3},
               as_bytes(std::vector<float>{1, 2, 3, 4, 5, -6.5f})});
  e.push_back({"half", dtype::f16, {4},
               as_bytes(std::vector<uint16_t>{f32_to_f16(1), f32_to_f16(-2), f32_to_f16(0.5f), 0})});
  e.push_back({"brain", dtype::bf16, {2, 1, 3},
               as_bytes(std::vector<uint16_t>{f32_to_bf16(1), 2, 3, 4, 5, f32_to_bf16(-3)})});
  e.push_back({"scalar", dtype::f32, {}, as_bytes(std::vector<float>{42})});
  e.push_back({"empty", dtype::bf16, {0, 5}, {}});
  e.push_back({"we\"ird\\name\n\x01", dtype::f32, {1}, as_bytes(std::vector<float>{7})});
  e.push_back({"\xc3\xbcnicode.\xe6\x9d\x83\xe9\x87\x8d", dtype::f16, {1, 1}, as_bytes(std::vector<uint16_t>{9})});
  return e;
}

TEST(Safetensors, RoundTripsEveryDtypeAndShape) {
  const auto entries = sample_entries();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"quote\"back\\slash", "x\ny"}};
  const auto path = tmp_path("round_trip.safetensors");
  ASSERT_TRUE(write_safetensors(path, entries, meta)) << "write failed";

  auto f = open_safetensors(path);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->metadata, meta);
  ASSERT_EQ(f->tensors.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& want = entries[i];
    const auto& got = f->tensors[i];  // header order is the written order
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.shape, want.shape);
    ASSERT_EQ(got.nbytes, want.data.size());
    if (got.nbytes > 0) {
      EXPECT_EQ(0, std::memcmp(got.data, want.data.data(), got.nbytes));
    }
    EXPECT_EQ(f->find(want.name), &got);
  }
  EXPECT_EQ(f->find("missing"), nullptr);
  EXPECT_EQ(f->tensors[0].numel(), 6);
  EXPECT_EQ(f->tensors[3].numel(), 1);  // a scalar

  // The views live as long as the mapping, which the shared pointer keeps after `f` is gone.
  std::vector<tensor_view> views = f->tensors;
  std::shared_ptr<const mapped_file> keep = f->file;
  f = fail("dropped");
  float first = 0;
  std::memcpy(&first, views[0].data, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(Safetensors, WriterPadsHeaderWithSpacesLikeThePythonLibrary) {
  const auto path = tmp_path("exact.safetensors");
  std::vector<safetensors_entry> e{{"a", dtype::f32, {1}, as_bytes(std::vector<float>{1.5f})},
                                   {"b", dtype::bf16, {2, 1}, as_bytes(std::vector<uint16_t>{1, 2})}};
  ASSERT_TRUE(write_safetensors(path, e, {{"format", "pt"}}));
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"BF16","shape":[2,1],"data_offsets":[4,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  ASSERT_EQ(header.size() % 8, 0u);
  auto want = image(header, 0);
  for (auto b : e[0].data) want.push_back(b);
  for (auto b : e[1].data) want.push_back(b);
  EXPECT_EQ(read_all(path), want);
}

TEST(Safetensors, ReadsHeaderWithWhitespaceGapsAndNullMetadata) {
  const std::string header =
      "{ \"__metadata__\" : null,\n \"x\": {\"shape\": [2], \"dtype\": \"F16\", "
      "\"data_offsets\": [4, 8]}, \"y\": {\"dtype\": \"F32\", \"shape\": [], "
      "\"data_offsets\": [8, 12]}}   ";
  auto img = image(header, 16);  // bytes 0..4 and 12..16 of the data belong to no tensor
  auto f = parse_safetensors(img, "gaps.safetensors");
  ASSERT_TRUE(f) << f.message();
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[0].data, img.data() + 8 + header.size() + 4);
  EXPECT_EQ(f->tensors[1].shape, std::vector<int64_t>{});
  EXPECT_TRUE(f->metadata.empty());
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const auto path = tmp_path("truncate.safetensors");
  ASSERT_TRUE(write_safetensors(path, sample_entries(), {{"k", "v"}}));
  const auto full = read_all(path);
  ASSERT_TRUE(parse_safetensors(full, "t"));
  for (size_t n = 0; n < full.size(); ++n) {
    // A fresh copy of exactly n bytes, so reading past it is caught by sanitizers.
    std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    auto r = parse_safetensors(cut, "cut.safetensors");
    ASSERT_FALSE(r) << "accepted a file cut to " << n << " of " << full.size() << " bytes";
    EXPECT_EQ(r.message().rfind("cut.safetensors: ", 0), 0u) << r.message();
  }
}

TEST(Safetensors, MismatchedOffsetsNameTensorShapeAndSize) {
  const std::string header =
      R"({"model.layers.0.mlp.up_proj.weight":{"dtype":"BF16","shape":[10,20],"data_offsets":[0,100]}})";
  EXPECT_EQ(parse_error(image(header, 400)),
            "model.safetensors: tensor 'model.layers.0.mlp.up_proj.weight': data_offsets [0, 100] "
            "do not match shape [10, 20] of BF16 (400 bytes)");
}

TEST(Safetensors, UnsupportedDtypesNameTensorAndDtype) {
  for (const char* dt : {"I8", "F64", "F8_E4M3", "bf16", "Q8_0"}) {
    const std::string header = std::string(R"({"w.0":{"dtype":")") + dt +
                               R"(","shape":[4],"data_offsets":[0,4]}})";
    const auto msg = parse_error(image(header, 4));
    EXPECT_NE(msg.find("tensor 'w.0'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("unsupported dtype '") + dt + "'"), std::string::npos) << msg;
  }
}

struct bad_header_case {
  const char* header;
  size_t data_size;
  const char* expect;  // a part of the message
};

TEST(Safetensors, CorruptHeadersAreRejectedWithTheCulpritNamed) {
  const bad_header_case cases[] = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       16, "tensor 'b': data_offsets [8, 12] overlap tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 7,
       "tensor 'a': data_offsets [0, 8] lie beyond the data section (7 bytes)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, "tensor 'a' appears twice"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8,
       "tensor 'a': shape entry -2 is not a non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, "tensor 'a': shape entry 2.5"},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", 8,
       "tensor 'a': shape [4611686018427387904, 8] has too many elements"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 8,
       "tensor 'a': shape [4294967296, 4294967296, 0] has too many elements"},
      {R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", 8,
       "tensor 'a': shape entry 18446744073709551615 is too large"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8,
       "tensor 'a': data_offsets [8, 0] end before they begin"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", 9,
       "tensor 'a': data_offsets must be an array of two integers"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8,
       "tensor 'a': data_offsets must be non-negative integers"},
      {R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "tensor 'a': missing \"dtype\""},
      {R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "tensor 'a': missing \"shape\""},
      {R"({"a":{"dtype":"F32","shape":[2]}})", 8, "tensor 'a': missing \"data_offsets\""},
      {R"({"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8,
       "tensor 'a': field 'dtype' appears twice"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8,
       "tensor 'a': unexpected field 'extra'"},
      {R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8, "tensor 'a': dtype is not a string"},
      {R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, "tensor 'a': shape is not an array"},
      {R"({"a":[1,2]})", 8, "tensor 'a': entry is not a JSON object"},
      {R"({"__metadata__":{"k":1}})", 0, "__metadata__: value of 'k' is not a string"},
      {R"({"__metadata__":[]})", 0, "__metadata__: not a JSON object"},
      {R"({"__metadata__":{},"__metadata__":{}})", 0, "__metadata__ appears twice"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8, "header is not valid JSON"},
      {R"({"a\u0001b":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", 8, "tensor 'a\\x01b'"},
      {"[1,2]   ", 0, "header does not start with '{'"},
  };
  for (const auto& c : cases) {
    const auto msg = parse_error(image(c.header, c.data_size));
    EXPECT_EQ(msg.rfind("model.safetensors: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "header: " << c.header << "\nmessage: " << msg;
  }
}

TEST(Safetensors, BadHeaderLengthsAreRejected) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const auto too_long = parse_error(image(header, 4, header.size() + 5));
  EXPECT_NE(too_long.find("header length " + std::to_string(header.size() + 5) +
                          " exceeds the file size (" + std::to_string(8 + header.size() + 4) + " bytes)"),
            std::string::npos)
      << too_long;
  EXPECT_NE(parse_error(image(header, 4, safetensors_max_header + 1)).find("exceeds the 104857600-byte limit"),
            std::string::npos);
  EXPECT_NE(parse_error(image(header, 4, uint64_t(-1))).find("header length 18446744073709551615"),
            std::string::npos);
  EXPECT_NE(parse_error(image("{}", 0, 0)).find("too short for a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(std::vector<std::byte>(5)).find("file is 5 bytes"), std::string::npos);
  // An empty header object is a valid file with no tensors.
  auto empty = parse_safetensors(image("{}", 0), "e");
  ASSERT_TRUE(empty) << empty.message();
  EXPECT_TRUE(empty->tensors.empty());
}

TEST(Safetensors, WriterRefusesWhatCannotBeRead) {
  const auto path = tmp_path("refused.safetensors");
  auto expect_error = [&path](std::vector<safetensors_entry> e, const std::string& part) {
    auto r = write_safetensors(path, e, {});
    ASSERT_FALSE(r) << part;
    EXPECT_NE(r.message().find(part), std::string::npos) << r.message();
    EXPECT_FALSE(fs::exists(path));
  };
  expect_error({{"q", dtype::q8_0, {32}, std::vector<std::byte>(34)}},
               "tensor 'q': dtype q8_0 cannot be stored in safetensors");
  expect_error({{"s", dtype::f32, {3}, std::vector<std::byte>(8)}},
               "tensor 's': has 8 bytes of data, shape [3] of F32 needs 12");
  expect_error({{"d", dtype::f16, {1}, std::vector<std::byte>(2)}, {"d", dtype::f16, {1}, std::vector<std::byte>(2)}},
               "tensor 'd': appears twice");
  expect_error({{"__metadata__", dtype::f16, {1}, std::vector<std::byte>(2)}}, "reserved");
  expect_error({{"bad\xff", dtype::f16, {1}, std::vector<std::byte>(2)}}, "is not valid UTF-8");
  expect_error({{"neg", dtype::f16, {-1}, {}}}, "tensor 'neg': shape [-1] is invalid");

  auto r = write_safetensors(tmp_path("no/such/dir/x.safetensors"), {}, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("no/such/dir/x.safetensors: cannot create"), std::string::npos) << r.message();
}

TEST(MappedFile, ErrorsNameThePath) {
  auto missing = mapped_file::open(tmp_path("does-not-exist.bin"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("does-not-exist.bin: cannot open: No such file"), std::string::npos)
      << missing.message();
  auto dir = mapped_file::open(fs::path(tmp_path("x")).parent_path().string());
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.message().find("not a regular file"), std::string::npos) << dir.message();
  auto st = open_safetensors(tmp_path("does-not-exist.safetensors"));
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("does-not-exist.safetensors"), std::string::npos);
}

TEST(MappedFile, MapsBytesAndEmptyFiles) {
  const auto path = tmp_path("bytes.bin");
  { std::ofstream(path, std::ios::binary) << "hello"; }
  auto m = mapped_file::open(path);
  ASSERT_TRUE(m) << m.message();
  ASSERT_EQ(m->bytes().size(), 5u);
  EXPECT_EQ(std::memcmp(m->bytes().data(), "hello", 5), 0);
  EXPECT_EQ(m->path(), path);
  mapped_file moved = std::move(*m);
  EXPECT_EQ(moved.bytes().size(), 5u);
  EXPECT_EQ(m->bytes().size(), 0u);

  const auto empty_path = tmp_path("empty.bin");
  { std::ofstream(empty_path, std::ios::binary); }
  auto e = mapped_file::open(empty_path);
  ASSERT_TRUE(e) << e.message();
  EXPECT_TRUE(e->bytes().empty());
  auto st = open_safetensors(empty_path);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("empty.bin: file is 0 bytes"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace troupe::engine
