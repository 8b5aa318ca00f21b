// The peer for `troupe bench tokenizer`: Hugging Face's tokenizer port (transformers.js) encoding
// the same text. Usage: node bench_tokenize.mjs TOKENIZER_DIR TEXT_FILE
// Prints the median of 5 timed encodes after one warm-up (its caches warm, as troupe's are).
import { readFileSync, existsSync } from 'node:fs';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const [dir, text_file] = process.argv.slice(2);
const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
const config_path = `${dir}/tokenizer_config.json`;
const config = existsSync(config_path) ? JSON.parse(readFileSync(config_path, 'utf8')) : {};
const tokenizer = new PreTrainedTokenizer(json, config);
const text = readFileSync(text_file, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
const first = process.hrtime.bigint();
const ids = tokenizer.encode(text, { add_special_tokens: false });
const cold_ms = Number(process.hrtime.bigint() - first) / 1e6;
const times = [];
for (let i = 0; i < 5; ++i) {
  const t0 = process.hrtime.bigint();
  tokenizer.encode(text, { add_special_tokens: false });
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
const median = times[2];
console.log(JSON.stringify({ bytes, tokens: ids.length, cold_ms, median_ms: median,
                             mib_per_s: bytes / 1048576 / (median / 1000) }));
