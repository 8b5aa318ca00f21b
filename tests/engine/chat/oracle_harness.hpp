// Compares our renders with the independent reference, Hugging Face's JavaScript Jinja
// (@huggingface/jinja, via tests/oracle/render_template.mjs): a batch of cases goes to node once,
// each result is compared byte for byte with ours, and every difference is reported with the case,
// both outputs and both errors.
#pragma once

#include <simdjson.h>

#include <string>
#include <vector>

#include "common/json_escape.hpp"
#include "engine/chat/chat_template.hpp"
#include "tests/test_oracle.hpp"
#include "tests/test_tmp.hpp"

namespace troupe::engine::chat::test {

struct template_case {
  std::string name;         // shown when it fails
  std::string source;       // the template
  std::string context;      // a JSON object: the template's variables
  std::string error = {};   // non-empty: both renders must fail, with messages containing this
};

struct render_outcome {
  bool ok = false;
  std::string text;  // the output, or the error message
};

inline render_outcome render_ours(const template_case& c) {
  auto tmpl = chat_template::parse(c.source);
  if (!tmpl) return {false, tmpl.message()};
  auto context = from_json(c.context);
  if (!context) return {false, "bad test context: " + context.message()};
  auto text = tmpl->render(*context);
  if (!text) return {false, text.message()};
  return {true, std::move(*text)};
}

// Each case's difference from the oracle, as a readable report; empty when all agree. `batch`
// names the scratch file.
inline std::vector<std::string> compare_with_oracle(const std::string& batch, const std::vector<template_case>& cases) {
  std::string input = "[";
  for (size_t i = 0; i < cases.size(); ++i) {
    if (i > 0) input += ",\n";
    input += "{\"template\": " + json_string(cases[i].source) + ", \"context\": " + cases[i].context + "}";
  }
  input += "]";
  const std::string path = troupe::test::process_tmp() + "/" + batch + ".json";
  troupe::test::write_file(path, input);
  const auto oracle = troupe::test::run_oracle("render_template.mjs", path);
  if (!oracle.ok) return {"the oracle did not run: " + oracle.output};

  simdjson::dom::parser parser;
  simdjson::dom::array results;
  if (parser.parse(oracle.output).get(results) != simdjson::SUCCESS || results.size() != cases.size()) {
    return {"unreadable oracle output: " + oracle.output.substr(0, 2000)};
  }
  std::vector<std::string> failures;
  size_t i = 0;
  for (simdjson::dom::element r : results) {
    const template_case& c = cases[i++];
    render_outcome theirs;
    theirs.ok = r["ok"].get_bool().value_unsafe();
    std::string_view text;
    if (r[theirs.ok ? "text" : "error"].get_string().get(text) != simdjson::SUCCESS) text = "(no text)";
    theirs.text = std::string(text);
    const render_outcome ours = render_ours(c);

    std::string problem;
    if (c.error.empty()) {
      if (!theirs.ok) problem = "the oracle failed";
      else if (!ours.ok) problem = "we failed";
      else if (ours.text != theirs.text) problem = "outputs differ";
    } else {
      if (theirs.ok || theirs.text.find(c.error) == std::string::npos) problem = "the oracle did not fail as expected";
      else if (ours.ok || ours.text.find(c.error) == std::string::npos) problem = "we did not fail as expected";
    }
    if (problem.empty()) continue;
    const auto clip = [](const std::string& s) { return s.size() > 300 ? s.substr(0, 300) + "..." : s; };
    const std::string shown = clip(c.source);
    failures.push_back("case '" + c.name + "': " + problem + "\n  template: " + json_string(shown) +
                       "\n  context:  " + clip(c.context) + "\n  ours:     " + (ours.ok ? "" : "ERROR ") +
                       json_string(ours.text) + "\n  oracle:   " + (theirs.ok ? "" : "ERROR ") +
                       json_string(theirs.text) + (c.error.empty() ? "" : "\n  expected error: " + c.error));
  }
  return failures;
}

// A gtest-friendly summary: all reports joined.
inline std::string join_reports(const std::vector<std::string>& reports) {
  std::string out;
  for (const std::string& r : reports) out += r + "\n";
  return out;
}

}  // namespace troupe::engine::chat::test
