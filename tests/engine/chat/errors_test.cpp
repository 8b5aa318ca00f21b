// Errors: every bad template and every runaway render is an error value naming the construct and
// its place ("chat template: line L, column C: ..."), never an exception, a crash or a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "engine/chat/chat_template.hpp"

namespace troupe::engine::chat {
namespace {

std::string parse_error(const std::string& source) {
  auto t = chat_template::parse(source);
  return t ? "(parsed)" : t.message();
}

std::string render_error(const std::string& source, const std::string& context_json = "{}",
                         const render_limits& limits = {}) {
  auto t = chat_template::parse(source);
  if (!t) return "(parse error) " + t.message();
  auto context = from_json(context_json);
  if (!context) return "(bad context) " + context.message();
  auto text = t->render(*context, limits);
  return text ? "(rendered) " + text->substr(0, 100) : text.message();
}

TEST(chat_errors, parse_errors_name_the_construct_and_place) {
  EXPECT_EQ(parse_error("ab\ncd {{ x | foo }}"), "chat template: line 2, column 11: unknown filter 'foo'");
  EXPECT_EQ(parse_error("{% if x is frobnicated %}{% endif %}"),
            "chat template: line 1, column 12: unknown test 'frobnicated'");
  EXPECT_EQ(parse_error("line\n  {% extends 'base.html' %}"), "chat template: line 2, column 3: unsupported tag 'extends'");
  EXPECT_EQ(parse_error("{% include 'x' %}"), "chat template: line 1, column 1: unsupported tag 'include'");
  EXPECT_EQ(parse_error("{% frob %}"), "chat template: line 1, column 1: unknown tag 'frob'");
  EXPECT_EQ(parse_error("x\n{% for m in messages %}{{ m }}"),
            "chat template: line 2, column 1: unclosed 'for' tag: expected 'endfor' before the end of the template");
  EXPECT_EQ(parse_error("{% if a %}x{% elif b %}"),
            "chat template: line 1, column 1: unclosed 'if' tag: expected 'endif' before the end of the template");
  EXPECT_EQ(parse_error("{% for x in y %}{% endif %}{% endfor %}"), "chat template: line 1, column 17: unexpected 'endif'");
  EXPECT_EQ(parse_error("{% endfor %}"), "chat template: line 1, column 1: unexpected 'endfor'");
  EXPECT_EQ(parse_error("{{ x "), "chat template: line 1, column 1: unexpected end of template: '{{' is never closed");
  EXPECT_EQ(parse_error("{{ 'abc }}"), "chat template: line 1, column 4: unterminated string literal");
  EXPECT_EQ(parse_error("{# never closed"), "chat template: line 1, column 1: unclosed comment: '{#' has no matching '#}'");
  EXPECT_EQ(parse_error("{% raw %}x"),
            "chat template: line 1, column 1: unclosed raw block: '{% raw %}' has no matching '{% endraw %}'");
  EXPECT_EQ(parse_error("{{ a ! b }}"), "chat template: line 1, column 6: unexpected character '!'");
  EXPECT_EQ(parse_error("{{ (1 + 2 }}"), "chat template: line 1, column 11: unexpected '}'");
  EXPECT_EQ(parse_error("{{ 1 + }}"), "chat template: line 1, column 8: expected an expression, got '}}'");
  EXPECT_EQ(parse_error("{% break %}"), "chat template: line 1, column 1: 'break' outside a loop");
  EXPECT_EQ(parse_error("{% for x in y recursive %}{% endfor %}"),
            "chat template: line 1, column 15: unsupported: recursive loops");
  EXPECT_EQ(parse_error("{{ f(a=1, 2) }}"), "chat template: line 1, column 11: positional argument follows keyword argument");
  EXPECT_EQ(parse_error("{{ 99999999999999999999 }}"),
            "chat template: line 1, column 4: integer literal too large: 99999999999999999999");
  EXPECT_EQ(parse_error("{% set 1 = 2 %}"), "chat template: line 1, column 8: expected a variable name, got number 1");
}

TEST(chat_errors, render_errors_name_the_place) {
  EXPECT_EQ(render_error("{{ missing.attr }}"), "chat template: line 1, column 4: 'missing' is undefined");
  EXPECT_EQ(render_error("\n  {{ messages[0]['role'] }}", R"({"messages": []})"),
            "chat template: line 2, column 6: 'messages[0]' is undefined");
  EXPECT_EQ(render_error("{{ foo() }}"), "chat template: line 1, column 4: 'foo' is undefined");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}"), "chat template: line 1, column 8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("{{ 1 / 0 }}"), "chat template: line 1, column 6: division by zero");
  EXPECT_EQ(render_error("{{ 1 < 'a' }}"),
            "chat template: line 1, column 4: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(render_error("{% for x in 5 %}{% endfor %}"), "chat template: line 1, column 13: 'int' object is not iterable");
  EXPECT_EQ(render_error("{% set a, b = [1] %}"),
            "chat template: line 1, column 1: not enough values to unpack (expected 2, got 1)");
  EXPECT_EQ(render_error("{% set d = {} %}{% set d.x = 1 %}"),
            "chat template: line 1, column 17: cannot set 'd.x': 'd' is a dict, not a namespace()");
  EXPECT_EQ(render_error("{{ x | tojson }}"),
            "chat template: line 1, column 8: tojson: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(render_error("{{ 9223372036854775807 + 1 }}"),
            "chat template: line 1, column 24: integer overflow (this interpreter's integers are 64-bit)");
  EXPECT_EQ(render_error("{{ range(1000000) }}"),
            "chat template: line 1, column 4: range too big: the sandbox allows at most 100000 numbers");
  EXPECT_EQ(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
            "chat template: line 1, column 34: macro 'm' takes not more than 1 argument(s)");
  EXPECT_EQ(render_error("{{ 'abc'.split('') }}"), "chat template: line 1, column 4: empty separator");
  // The template's own raise_exception, inside a macro: the innermost place is named.
  EXPECT_EQ(render_error("{% macro check(m) %}\n{{ raise_exception('bad role: ' + m) }}{% endmacro %}{{ check('x') }}"),
            "chat template: line 2, column 4: bad role: x");
}

TEST(chat_errors, runaway_renders_stop) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(render_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}").find("nested deeper than 256 levels"),
            std::string::npos);
  EXPECT_NE(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
                .find("more than 1000000 loop iterations"),
            std::string::npos);
  EXPECT_NE(render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")
                .find("the output is larger than the limit of 16777216 bytes"),
            std::string::npos);
  EXPECT_NE(render_error("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
                .find("string is larger than the output limit"),
            std::string::npos);
  EXPECT_NE(render_error("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}")
                .find("nested deeper than 512 levels"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 'ab' * 100000000 }}").find("string repetition is larger than the output limit"),
            std::string::npos);
  // Work, not iterations: few loop steps that each copy a large string.
  render_limits small;
  small.max_work = 1'000'000;
  EXPECT_NE(render_error("{% set s = 'x' * 100000 %}{% for i in range(100) %}{% set t = s ~ s %}{% endfor %}", "{}", small)
                .find("exceeded its work limit"),
            std::string::npos);
  // Comparisons and filters over large lists of large strings, in loops: charged as they go.
  const std::string big_list =
      "{% set ns = namespace(l=[]) %}{% for i in range(2000) %}{% set ns.l = ns.l + ['x' * 10000 ~ i] %}{% endfor %}";
  EXPECT_NE(render_error(big_list + "{% for a in ns.l %}{% for b in ns.l %}{% if b in ns.l %}{% endif %}{% endfor %}"
                                    "{% endfor %}")
                .find("exceeded its work limit"),
            std::string::npos);
  EXPECT_NE(render_error(big_list + "{% for a in ns.l %}{{ ns.l | unique | length }}{{ ns.l | map('upper') | length }}"
                                    "{{ ns.l | sort | length }}{% endfor %}")
                .find("exceeded its work limit"),
            std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(chat_errors, hostile_sources_fail_cleanly) {
  const std::string deep_parens = std::string(10000, '(');
  EXPECT_NE(parse_error("{{ " + deep_parens + "1" + std::string(10000, ')') + " }}").find("nested deeper than 128 levels"),
            std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 10000; ++i) chain += " + 1";
  EXPECT_NE(parse_error(chain + " }}").find("expression nested deeper than 128 levels"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_NE(parse_error(blocks).find("nested deeper than 128 levels"), std::string::npos);
  std::string attrs = "{{ x";
  for (int i = 0; i < 10000; ++i) attrs += ".a";
  EXPECT_NE(parse_error(attrs + " }}").find("expression nested deeper"), std::string::npos);
  EXPECT_NE(parse_error(std::string(2 << 20, 'x')).find("template is larger than 1 MiB"), std::string::npos);
  EXPECT_EQ(parse_error(""), "(parsed)");
  EXPECT_EQ(render_error("{{"), "(parse error) chat template: line 1, column 1: unexpected end of template: '{{' is never closed");
  EXPECT_EQ(render_error(std::string("a\0b{{ 'c\0' }}", 13)), std::string("(rendered) a\0bc\0", 16));
  EXPECT_EQ(render_error("\xff\xfe{{ '\xc3' }}"), "(rendered) \xff\xfe\xc3");
}

TEST(chat_errors, bad_json_contexts) {
  EXPECT_FALSE(from_json("{\"a\": "));
  EXPECT_FALSE(from_json(std::string(600, '[') + std::string(600, ']')));
  EXPECT_NE(from_json(std::string(600, '[') + std::string(600, ']')).message().find("nested deeper than 512"),
            std::string::npos);
}

}  // namespace
}  // namespace troupe::engine::chat
