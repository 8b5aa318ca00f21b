// Writes the real Llama 2 tokenizer (the SentencePiece vocabulary and merges that
// llama-tokenizer-js ships, extracted from Meta's tokenizer.json) as a Hugging Face folder:
// tokenizer.json in the layout transformers uses for Llama 2 (legacy Prepend/Replace normalizer,
// byte fallback, <s> template, Replace/ByteFallback/Fuse/Strip decoder) and tokenizer_config.json.
// Usage: node llama2_tokenizer.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import llamaTokenizer from 'llama-tokenizer-js';

const dir = process.argv[2];
mkdirSync(dir, { recursive: true });
const vocab = {};
llamaTokenizer.vocabById.forEach((token, id) => { vocab[token] = id; });
// The merges map holds "left right" keys in rank order (its values are increasing priorities).
const merges = [...llamaTokenizer.merges.entries()]
  .sort((a, b) => a[1] - b[1])
  .map(([key]) => { const i = key.indexOf(' ', 1); return [key.slice(0, i), key.slice(i + 1)]; });
const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
                                     normalized: false, special: true });
const tokenizer = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: { type: 'Sequence', normalizers: [
    { type: 'Prepend', prepend: '\u2581' },
    { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
  pre_tokenizer: null,
  post_processor: { type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
           { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
  decoder: { type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
    { type: 'ByteFallback' }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
  model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
           end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
};
writeFileSync(`${dir}/tokenizer.json`, JSON.stringify(tokenizer));
writeFileSync(`${dir}/tokenizer_config.json`, JSON.stringify({
  add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>',
  unk_token: '<unk>', clean_up_tokenization_spaces: false, legacy: true,
  tokenizer_class: 'LlamaTokenizer' }));
console.log(`${Object.keys(vocab).length} tokens, ${merges.length} merges`);
