// load_model on good and broken model folders and files: every problem is an error naming the file
// and the tensor or key.
#include "tests/test_tmp.hpp"
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "engine/model/model.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

std::string copy_model(const std::string& src, const std::string& name) {
  const std::string dst = test::process_tmp() + "/broken_" + name;
  fs::remove_all(dst);
  fs::copy(src, dst, fs::copy_options::recursive);
  return dst;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = read(path);
  const size_t p = s.find(from);
  ASSERT_NE(p, std::string::npos) << from;
  s.replace(p, from.size(), to);
  write(path, s);
}

void expect_error(const std::string& path, const std::vector<std::string>& fragments) {
  auto m = load_model(path);
  ASSERT_FALSE(m) << "expected an error loading " << path;
  for (const auto& f : fragments) EXPECT_NE(m.message().find(f), std::string::npos) << m.message();
}

TEST(model_loader, loads_hf_and_gguf_with_same_config) {
  const std::string dir = test::tiny_model("loader_llama", test::small_spec());
  auto hf = load_model(dir);
  ASSERT_TRUE(hf) << hf.message();
  auto gg = load_model(dir + ".gguf");
  ASSERT_TRUE(gg) << gg.message();
  const model_config &a = (*hf)->config, &b = (*gg)->config;
  EXPECT_EQ(a.arch, "llama");
  EXPECT_EQ(a.n_layers, 2);
  EXPECT_EQ(a.dim, 64);
  EXPECT_EQ(a.n_kv_heads, 2);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.ffn_dim, b.ffn_dim);
  EXPECT_EQ(a.max_position, b.max_position);
  EXPECT_FALSE(a.rope_interleaved);
  EXPECT_TRUE(b.rope_interleaved);  // llama.cpp's permuted q/k rows
  EXPECT_FALSE((*hf)->chat_template.empty());
  EXPECT_EQ((*hf)->chat_template, (*gg)->chat_template);
  // f32 weights are used in place from the mapping: the view points into the file.
  EXPECT_EQ((*hf)->weights.layers[0].wq.type, dtype::f32);
  EXPECT_GT((*hf)->decode_weight_bytes(), 0u);
}

TEST(model_loader, read_mode_copies_the_same_bytes) {
  const std::string dir = test::tiny_model("loader_llama", test::small_spec());
  for (const std::string path : {dir, dir + ".gguf"}) {
    auto mapped = load_model(path, load_mode::map);
    auto read = load_model(path, load_mode::read);
    ASSERT_TRUE(mapped) << mapped.message();
    ASSERT_TRUE(read) << read.message();
    const tensor_view& a = (*mapped)->weights.layers[1].w_down;
    const tensor_view& b = (*read)->weights.layers[1].w_down;
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_NE(a.data, b.data);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << path;
  }
}

TEST(model_loader, missing_paths_and_files) {
  expect_error(test::process_tmp() + "/does-not-exist", {"does-not-exist", "no such file"});
  const std::string dir = copy_model(test::tiny_model("loader_llama", test::small_spec()), "no_weights");
  fs::remove(dir + "/model.safetensors");
  expect_error(dir, {"model.safetensors"});
  const std::string dir2 = copy_model(test::tiny_model("loader_llama", test::small_spec()), "no_config");
  fs::remove(dir2 + "/config.json");
  expect_error(dir2, {"config.json"});
}

TEST(model_loader, unknown_architecture_is_named) {
  const std::string dir = copy_model(test::tiny_model("loader_llama", test::small_spec()), "arch");
  replace_in_file(dir + "/config.json", "LlamaForCausalLM", "GPTNeoXForCausalLM");
  expect_error(dir, {"config.json", "GPTNeoXForCausalLM", "unsupported architecture"});
}

TEST(model_loader, bad_config_values_are_named) {
  const std::string src = test::tiny_model("loader_llama", test::small_spec());
  std::string dir = copy_model(src, "heads");
  replace_in_file(dir + "/config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
  expect_error(dir, {"num_key_value_heads", "3"});
  dir = copy_model(src, "layers");
  replace_in_file(dir + "/config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"two\"");
  expect_error(dir, {"num_hidden_layers", "integer"});
  dir = copy_model(src, "json");
  write(dir + "/config.json", "{\"architectures\": [\"LlamaForCausalLM\"");
  expect_error(dir, {"config.json", "invalid JSON"});
  dir = copy_model(src, "scaling");
  replace_in_file(dir + "/config.json", "\"hidden_act\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0},\n  \"hidden_act\"");
  expect_error(dir, {"rope_scaling", "yarn"});
}

TEST(model_loader, config_that_disagrees_with_tensors_names_the_tensor) {
  const std::string src = test::tiny_model("loader_llama", test::small_spec());
  std::string dir = copy_model(src, "ffn");
  replace_in_file(dir + "/config.json", "\"intermediate_size\": 128", "\"intermediate_size\": 160");
  expect_error(dir, {"model.layers.0.mlp.gate_proj.weight", "shape", "[128, 64]", "[160, 64]"});
  dir = copy_model(src, "more_layers");
  replace_in_file(dir + "/config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
  expect_error(dir, {"model.layers.2.input_layernorm.weight", "missing"});
  dir = copy_model(src, "qwen_bias");
  replace_in_file(dir + "/config.json", "LlamaForCausalLM", "Qwen2ForCausalLM");
  expect_error(dir, {"model.layers.0.self_attn.q_proj.bias", "missing"});
}

TEST(model_loader, truncated_weights_file_is_an_error_not_a_crash) {
  const std::string src = test::tiny_model("loader_llama", test::small_spec());
  const std::string dir = copy_model(src, "truncated");
  const auto size = fs::file_size(dir + "/model.safetensors");
  fs::resize_file(dir + "/model.safetensors", size / 2);
  expect_error(dir, {"model.safetensors"});
  const std::string gguf = test::process_tmp() + "/broken_truncated.gguf";
  fs::copy_file(src + ".gguf", gguf, fs::copy_options::overwrite_existing);
  fs::resize_file(gguf, fs::file_size(gguf) - 100);
  expect_error(gguf, {"broken_truncated.gguf"});
}

TEST(model_loader, sharded_index_that_escapes_the_folder_is_refused) {
  const std::string src = test::tiny_model("loader_llama", test::small_spec());
  const std::string dir = copy_model(src, "escape");
  write(dir + "/model.safetensors.index.json",
        "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}");
  expect_error(dir, {"model.safetensors.index.json", "../../etc/passwd"});
}

}  // namespace
}  // namespace troupe::engine
