// Oracle for token ids: Hugging Face's tokenizer port (transformers.js). Reads a JSON file
// {"dir": folder with tokenizer.json [+ tokenizer_config.json], "texts": [...], "decode": [[ids]]}
// and prints {"with_special": [[ids]], "without_special": [[ids]],
//             "decoded": [text], "decoded_skip": [text]} (decoding without clean-up of spaces).
import { readFileSync, existsSync } from 'node:fs';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const json = JSON.parse(readFileSync(`${input.dir}/tokenizer.json`, 'utf8'));
const config_path = `${input.dir}/tokenizer_config.json`;
const config = existsSync(config_path) ? JSON.parse(readFileSync(config_path, 'utf8')) : {};
const tokenizer = new PreTrainedTokenizer(json, config);

const options = { clean_up_tokenization_spaces: false };
const decode = (ids, skip) =>
  ids.length === 0 ? '' : tokenizer.decode(ids, { ...options, skip_special_tokens: skip });
const out = {
  with_special: input.texts.map((t) => tokenizer.encode(t, { add_special_tokens: true })),
  without_special: input.texts.map((t) => tokenizer.encode(t, { add_special_tokens: false })),
  decoded: (input.decode ?? []).map((ids) => decode(ids, false)),
  decoded_skip: (input.decode ?? []).map((ids) => decode(ids, true)),
};
process.stdout.write(JSON.stringify(out));
