// Renders Jinja chat templates with Hugging Face's JavaScript port (@huggingface/jinja), the
// independent reference the chat-template tests compare against.
// Usage: node render_template.mjs CASES.json
//   CASES.json: [{"template": "...", "context": {...}}, ...]
// Prints a JSON list, one result per case in order: {"ok": true, "text": "..."} or
// {"ok": false, "error": "..."} (a parse or render error, e.g. the template's raise_exception).
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = cases.map(({ template, context }) => {
  try {
    return { ok: true, text: new Template(template).render(context ?? {}) };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(results));
