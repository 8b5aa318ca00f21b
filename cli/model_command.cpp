// `troupe model make-tiny OUT_DIR ...` and `troupe model info PATH`.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "engine/model/model.hpp"
#include "engine/tiny_model.hpp"

namespace troupe::cli {

namespace {

struct model_options {
  engine::tiny_model_spec spec;
  std::string out_dir, dtype = "f32", gguf_type = "f32", rope_scaling, info_path;
};

int run_make_tiny(model_options& o) {
  auto t = engine::parse_dtype(o.dtype);
  auto g = engine::parse_dtype(o.gguf_type);
  if (!t) return std::fprintf(stderr, "error: --dtype must be f32, f16 or bf16, got '%s'\n", o.dtype.c_str()), 2;
  if (!g) return std::fprintf(stderr, "error: --gguf-type must be f32, f16, bf16 or q8_0, got '%s'\n", o.gguf_type.c_str()), 2;
  if (!o.rope_scaling.empty() && o.rope_scaling != "llama3")
    return std::fprintf(stderr, "error: --rope-scaling must be llama3, got '%s'\n", o.rope_scaling.c_str()), 2;
  o.spec.type = *t;
  o.spec.gguf_type = *g;
  o.spec.rope_scaling_llama3 = o.rope_scaling == "llama3";
  if (auto ok = engine::make_tiny_model(o.spec, o.out_dir); !ok)
    return std::fprintf(stderr, "error: %s\n", ok.message().c_str()), 1;
  std::printf("wrote %s%s%s\n", o.out_dir.c_str(), o.spec.gguf_path.empty() ? "" : " and ", o.spec.gguf_path.c_str());
  return 0;
}

int run_info(const model_options& o) {
  auto m = engine::load_model(o.info_path);
  if (!m) return std::fprintf(stderr, "error: %s\n", m.message().c_str()), 1;
  const auto& c = (*m)->config;
  std::printf("arch %s, %lld layers, dim %lld, heads %lld (kv %lld, head_dim %lld), ffn %lld, vocab %lld, "
              "context %lld, rope_theta %g%s%s%s\nweights read per decoded token: %.1f MB (%s)\n",
              c.arch.c_str(), (long long)c.n_layers, (long long)c.dim, (long long)c.n_heads, (long long)c.n_kv_heads,
              (long long)c.head_dim, (long long)c.ffn_dim, (long long)c.vocab_size, (long long)c.max_position,
              double(c.rope_theta), c.rope_scaling ? ", llama3 rope scaling" : "",
              c.tied_embeddings ? ", tied embeddings" : "", c.qkv_bias ? ", qkv bias" : "",
              double((*m)->decode_weight_bytes()) / 1e6, std::string(engine::dtype_name((*m)->weights.layers.front().wq.type)).c_str());
  return 0;
}

}  // namespace

command_runner add_model_command(CLI::App& app) {
  auto o = std::make_shared<model_options>();
  CLI::App* model = app.add_subcommand("model", "make and inspect model files");
  model->require_subcommand(1);
  CLI::App* tiny = model->add_subcommand("make-tiny", "write a random-weight model (HF folder, optional GGUF)");
  tiny->add_option("out_dir", o->out_dir, "output folder")->required();
  tiny->add_option("--arch", o->spec.arch, "llama | mistral | qwen2")->capture_default_str();
  tiny->add_option("--layers", o->spec.layers)->capture_default_str();
  tiny->add_option("--dim", o->spec.dim)->capture_default_str();
  tiny->add_option("--heads", o->spec.heads)->capture_default_str();
  tiny->add_option("--kv-heads", o->spec.kv_heads)->capture_default_str();
  tiny->add_option("--ffn", o->spec.ffn)->capture_default_str();
  tiny->add_option("--vocab", o->spec.vocab)->capture_default_str();
  tiny->add_option("--max-position", o->spec.max_position)->capture_default_str();
  tiny->add_option("--rope-theta", o->spec.rope_theta)->capture_default_str();
  tiny->add_option("--rope-scaling", o->rope_scaling, "llama3: write a Llama 3.1 rope_scaling block");
  tiny->add_flag("--tied", o->spec.tied, "tie the output projection to the embedding");
  tiny->add_option("--dtype", o->dtype, "f32 | f16 | bf16")->capture_default_str();
  tiny->add_option("--seed", o->spec.seed)->capture_default_str();
  tiny->add_option("--shards", o->spec.shards, "safetensors shards (an index is written when > 1)")->capture_default_str();
  tiny->add_option("--gguf", o->spec.gguf_path, "also write the same weights as this GGUF file");
  tiny->add_option("--gguf-type", o->gguf_type, "f32 | f16 | bf16 | q8_0")->capture_default_str();
  CLI::App* info = model->add_subcommand("info", "print a model's configuration");
  info->add_option("path", o->info_path, "HF folder or .gguf file")->required();
  return [o, tiny]() { return tiny->parsed() ? run_make_tiny(*o) : run_info(*o); };
}

}  // namespace troupe::cli
