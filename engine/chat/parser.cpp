// Recursive-descent parser for the Jinja subset (see parser.hpp); the structure follows Jinja's own
// parser (jinja2/parser.py) function by function, so that precedence and corner cases agree.
#include "engine/chat/parser.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

#include "engine/chat/filters.hpp"
#include "engine/chat/lexer.hpp"
#include "engine/chat/tests.hpp"

namespace troupe::engine::chat {
namespace {

using names = std::initializer_list<std::string_view>;

bool contains(names list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// Jinja tags this interpreter does not implement: named in the error rather than "unknown".
constexpr std::string_view unsupported_tags[] = {"extends", "block", "include", "import", "from", "autoescape",
                                                 "trans", "pluralize", "do", "recursive"};

// Height of the subtrees below a node.
uint32_t height(const expr_ptr& e) { return e ? e->height : 0; }
uint32_t height(const std::vector<argument>& args) {
  uint32_t h = 0;
  for (const argument& a : args) h = std::max(h, height(a.value));
  return h;
}
uint32_t children_height(const literal_expr&) { return 0; }
uint32_t children_height(const name_expr&) { return 0; }
uint32_t children_height(const list_expr& n) {
  uint32_t h = 0;
  for (const expr_ptr& item : n.items) h = std::max(h, height(item));
  return h;
}
uint32_t children_height(const dict_expr& n) {
  uint32_t h = 0;
  for (const auto& [k, v] : n.entries) h = std::max({h, height(k), height(v)});
  return h;
}
uint32_t children_height(const attribute_expr& n) { return height(n.object); }
uint32_t children_height(const item_expr& n) { return std::max(height(n.object), height(n.key)); }
uint32_t children_height(const slice_expr& n) {
  return std::max({height(n.object), height(n.start), height(n.stop), height(n.step)});
}
uint32_t children_height(const call_expr& n) { return std::max(height(n.callee), height(n.args)); }
uint32_t children_height(const filter_expr& n) { return std::max(height(n.operand), height(n.filter.args)); }
uint32_t children_height(const test_expr& n) { return std::max(height(n.operand), height(n.args)); }
uint32_t children_height(const unary_expr& n) { return height(n.operand); }
uint32_t children_height(const binary_expr& n) { return std::max(height(n.left), height(n.right)); }
uint32_t children_height(const compare_expr& n) {
  uint32_t h = height(n.first);
  for (const auto& [op, e] : n.rest) h = std::max(h, height(e));
  return h;
}
uint32_t children_height(const conditional_expr& n) {
  return std::max({height(n.condition), height(n.then), height(n.otherwise)});
}

// A new node; an error when the tree would grow taller than max_parse_depth (long operator chains
// such as a + a + ... build tall trees without recursing in the parser).
template <class Node>
expected<expr_ptr> make_expr(source_location loc, Node node) {
  const uint32_t h = children_height(node) + 1;
  if (h > static_cast<uint32_t>(max_parse_depth)) {
    return located(loc, "expression nested deeper than " + std::to_string(max_parse_depth) + " levels");
  }
  auto e = std::make_unique<expr>(expr{loc, std::move(node)});
  e->height = h;
  return expr_ptr(std::move(e));
}

class parser {
 public:
  explicit parser(std::vector<token> tokens) : tokens_(std::move(tokens)) {}

  expected<body> parse_all() { return parse_body({}, "", {}); }

 private:
  // --- token stream -------------------------------------------------------------------------

  const token& peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const token& next() {
    const token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool at_op(std::string_view op, size_t ahead = 0) const {
    const token& t = peek(ahead);
    return t.kind == token_kind::op && t.text == op;
  }
  bool at_name(std::string_view name, size_t ahead = 0) const {
    const token& t = peek(ahead);
    return t.kind == token_kind::name && t.text == name;
  }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    next();
    return true;
  }

  static std::string describe(const token& t) {
    switch (t.kind) {
      case token_kind::text: return "template text";
      case token_kind::print_begin: return "'{{'";
      case token_kind::print_end: return "'}}'";
      case token_kind::block_begin: return "'{%'";
      case token_kind::block_end: return "'%}'";
      case token_kind::string: return "a string";
      case token_kind::integer:
      case token_kind::floating: return "number " + t.text;
      case token_kind::end: return "the end of the template";
      default: return quoted(t.text);
    }
  }

  error fail_here(const std::string& message) const { return located(peek().loc, message); }
  error unexpected(const std::string& expected_what) const {
    return fail_here("expected " + expected_what + ", got " + describe(peek()));
  }

  expected<void> expect_op(std::string_view op) {
    if (!skip_op(op)) return unexpected(quoted(op));
    return {};
  }
  expected<void> expect_kind(token_kind kind, const char* what) {
    if (peek().kind != kind) return unexpected(what);
    next();
    return {};
  }
  expected<std::string> expect_name(const char* what) {
    if (peek().kind != token_kind::name) return unexpected(what);
    return next().text;
  }
  expected<void> expect_block_end() { return expect_kind(token_kind::block_end, "'%}'"); }

  // Counts nesting while parsing; an error past max_parse_depth.
  class depth_guard {
   public:
    explicit depth_guard(parser& p) : p_(p) { ++p_.depth_; }
    ~depth_guard() { --p_.depth_; }
    depth_guard(const depth_guard&) = delete;
    depth_guard& operator=(const depth_guard&) = delete;
    [[nodiscard]] bool too_deep() const { return p_.depth_ > max_parse_depth; }

   private:
    parser& p_;
  };
  error too_deep() const {
    return fail_here("template nested deeper than " + std::to_string(max_parse_depth) + " levels");
  }

  // --- statements ---------------------------------------------------------------------------

  // Statements up to a block tag named in `ends` (left unread: the caller reads it), or the end of
  // the template when `ends` is empty. `opener` names the unclosed tag in errors.
  expected<body> parse_body(names ends, std::string_view opener, source_location opener_loc) {
    depth_guard guard(*this);
    if (guard.too_deep()) return too_deep();
    body out;
    while (true) {
      const token& t = peek();
      switch (t.kind) {
        case token_kind::text:
          out.push_back(stmt{t.loc, text_stmt{t.text}});
          next();
          break;
        case token_kind::print_begin: {
          const source_location loc = next().loc;
          auto e = parse_tuple(true, true, {});
          if (!e) return e.err();
          if (auto r = expect_kind(token_kind::print_end, "'}}'"); !r) return r.err();
          out.push_back(stmt{loc, print_stmt{std::move(*e)}});
          break;
        }
        case token_kind::block_begin: {
          const token& name = peek(1);
          if (name.kind == token_kind::name && contains(ends, name.text)) return out;
          if (auto r = parse_statement(out); !r) return r.err();
          break;
        }
        case token_kind::end:
          if (ends.size() == 0) return out;
          return located(opener_loc, "unclosed '" + std::string(opener) + "' tag: expected 'end" +
                                         std::string(opener) + "' before the end of the template");
        default: return unexpected("template text or a tag");
      }
    }
  }

  // After parse_body stopped at `{% name`: reads "{%", the name and, when `whole`, "%}".
  expected<std::string> read_end_tag(bool whole) {
    next();  // {%
    std::string name = next().text;
    if (whole) {
      if (auto r = expect_block_end(); !r) return r.err();
    }
    return name;
  }

  expected<void> parse_statement(body& out) {
    const source_location loc = next().loc;  // {%
    if (peek().kind != token_kind::name) return unexpected("a tag name");
    const std::string tag = next().text;
    if (tag == "if") return add(out, loc, parse_if(loc));
    if (tag == "for") return add(out, loc, parse_for(loc));
    if (tag == "set") return add(out, loc, parse_set(loc));
    if (tag == "macro") return add(out, loc, parse_macro(loc));
    if (tag == "call") return add(out, loc, parse_call_block(loc));
    if (tag == "filter") return add(out, loc, parse_filter_block(loc));
    if (tag == "with") return add(out, loc, parse_with(loc));
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return located(loc, quoted(tag) + " outside a loop");
      if (auto r = expect_block_end(); !r) return r.err();
      out.push_back(stmt{loc, loop_control_stmt{tag == "break"}});
      return {};
    }
    if (tag == "generation") {
      // Hugging Face's {% generation %} marks the assistant's tokens for training masks; for
      // rendering it is its body.
      if (auto r = expect_block_end(); !r) return r.err();
      auto content = parse_body({"endgeneration"}, "generation", loc);
      if (!content) return content.err();
      if (auto r = read_end_tag(true); !r) return r.err();
      for (stmt& s : *content) out.push_back(std::move(s));
      return {};
    }
    if (std::find(std::begin(unsupported_tags), std::end(unsupported_tags), tag) != std::end(unsupported_tags)) {
      return located(loc, "unsupported tag '" + tag + "'");
    }
    if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") return located(loc, "unexpected '" + tag + "'");
    return located(loc, "unknown tag '" + tag + "'");
  }

  template <class Node>
  expected<void> add(body& out, source_location loc, expected<Node> node) {
    if (!node) return node.err();
    out.push_back(stmt{loc, std::move(*node)});
    return {};
  }

  expected<if_stmt> parse_if(source_location loc) {
    if_stmt s;
    std::string tag = "if";
    while (true) {
      auto test = parse_tuple(false, false, {});
      if (!test) return test.err();
      if (auto r = expect_block_end(); !r) return r.err();
      auto content = parse_body({"elif", "else", "endif"}, "if", loc);
      if (!content) return content.err();
      s.branches.emplace_back(std::move(*test), std::move(*content));
      auto end = read_end_tag(false);
      if (!end) return end.err();
      if (*end == "elif") continue;
      if (auto r = expect_block_end(); !r) return r.err();
      if (*end == "endif") return s;
      auto otherwise = parse_body({"endif"}, "if", loc);
      if (!otherwise) return otherwise.err();
      s.otherwise = std::move(*otherwise);
      if (auto r = read_end_tag(true); !r) return r.err();
      return s;
    }
  }

  expected<for_stmt> parse_for(source_location loc) {
    for_stmt s;
    auto target = parse_assign_target(false);
    if (!target) return target.err();
    s.target = std::move(*target);
    if (!skip_name("in")) return unexpected("'in'");
    auto iterable = parse_tuple(false, false, {"recursive"});
    if (!iterable) return iterable.err();
    s.iterable = std::move(*iterable);
    if (skip_name("if")) {
      auto filter = parse_expression();
      if (!filter) return filter.err();
      s.filter = std::move(*filter);
    }
    if (at_name("recursive")) return fail_here("unsupported: recursive loops");
    if (auto r = expect_block_end(); !r) return r.err();
    ++loop_depth_;
    auto content = parse_body({"endfor", "else"}, "for", loc);
    --loop_depth_;
    if (!content) return content.err();
    s.content = std::move(*content);
    auto end = read_end_tag(true);
    if (!end) return end.err();
    if (*end == "else") {
      auto otherwise = parse_body({"endfor"}, "for", loc);
      if (!otherwise) return otherwise.err();
      s.otherwise = std::move(*otherwise);
      if (auto r = read_end_tag(true); !r) return r.err();
    }
    return s;
  }

  expected<set_stmt> parse_set(source_location loc) {
    set_stmt s;
    auto target = parse_assign_target(true);
    if (!target) return target.err();
    s.target = std::move(*target);
    if (skip_op("=")) {
      auto v = parse_tuple(true, false, {});
      if (!v) return v.err();
      s.value = std::move(*v);
      if (auto r = expect_block_end(); !r) return r.err();
      return s;
    }
    if (!s.target.attribute.empty() || s.target.unpack) return unexpected("'='");
    if (at_op("|")) {
      auto filters = parse_filter_chain();
      if (!filters) return filters.err();
      s.filters = std::move(*filters);
    }
    if (auto r = expect_block_end(); !r) return r.err();
    auto block = parse_body({"endset"}, "set", loc);
    if (!block) return block.err();
    s.block = std::move(*block);
    if (auto r = read_end_tag(true); !r) return r.err();
    return s;
  }

  // A name, names to unpack (`k, v` or `(k, v)`), or with `allow_attribute`, `ns.attr`.
  expected<assign_target> parse_assign_target(bool allow_attribute) {
    assign_target t;
    if (allow_attribute && peek().kind == token_kind::name && at_op(".", 1)) {
      t.names.push_back(next().text);
      next();  // .
      auto attr = expect_name("an attribute name");
      if (!attr) return attr.err();
      t.attribute = std::move(*attr);
      return t;
    }
    const bool parenthesized = skip_op("(");
    while (true) {
      auto name = expect_name("a variable name");
      if (!name) return name.err();
      if (*name == "true" || *name == "false" || *name == "none" || *name == "True" || *name == "False" ||
          *name == "None") {
        return fail_here("cannot assign to '" + *name + "'");
      }
      t.names.push_back(std::move(*name));
      if (!skip_op(",")) break;
      t.unpack = true;
      if (parenthesized ? at_op(")") : (at_name("in") || at_op("="))) break;  // trailing comma
    }
    if (parenthesized) {
      t.unpack = true;
      if (auto r = expect_op(")"); !r) return r.err();
    }
    return t;
  }

  // `(a, b='x')` of a macro or call block. Notes whether the body can take extra arguments.
  expected<std::vector<parameter>> parse_signature() {
    std::vector<parameter> params;
    if (auto r = expect_op("("); !r) return r.err();
    while (!at_op(")")) {
      if (!params.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
        if (at_op(")")) break;
      }
      auto name = expect_name("a parameter name");
      if (!name) return name.err();
      for (const parameter& p : params) {
        if (p.name == *name) return fail_here("duplicate parameter '" + *name + "'");
      }
      parameter p{std::move(*name), nullptr};
      if (skip_op("=")) {
        auto d = parse_expression();
        if (!d) return d.err();
        p.default_value = std::move(*d);
      } else if (!params.empty() && params.back().default_value) {
        return fail_here("non-default parameter follows default parameter");
      }
      params.push_back(std::move(p));
    }
    next();  // )
    return params;
  }

  // The body of a macro or call block, up to `end_tag` (read).
  expected<std::unique_ptr<const macro_def>> parse_macro_body(std::string name, std::vector<parameter> params,
                                                               std::string_view tag, std::string_view end_tag,
                                                               source_location loc) {
    if (auto r = expect_block_end(); !r) return r.err();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // break / continue cannot leave a macro
    macro_uses_.push_back({});
    auto content = parse_body({end_tag}, tag, loc);
    const macro_use uses = macro_uses_.back();
    macro_uses_.pop_back();
    loop_depth_ = saved_loops;
    if (!content) return content.err();
    if (auto r = read_end_tag(true); !r) return r.err();
    auto def = std::make_unique<macro_def>();
    def->name = std::move(name);
    def->params = std::move(params);
    def->content = std::move(*content);
    def->uses_varargs = uses.varargs;
    def->uses_kwargs = uses.kwargs;
    return std::unique_ptr<const macro_def>(std::move(def));
  }

  expected<macro_stmt> parse_macro(source_location loc) {
    auto name = expect_name("a macro name");
    if (!name) return name.err();
    auto params = parse_signature();
    if (!params) return params.err();
    auto def = parse_macro_body(std::move(*name), std::move(*params), "macro", "endmacro", loc);
    if (!def) return def.err();
    return macro_stmt{std::move(*def)};
  }

  expected<call_block_stmt> parse_call_block(source_location loc) {
    std::vector<parameter> params;
    if (at_op("(")) {
      auto p = parse_signature();
      if (!p) return p.err();
      params = std::move(*p);
    }
    auto call = parse_expression();
    if (!call) return call.err();
    if (!std::holds_alternative<call_expr>((*call)->node)) {
      return located((*call)->loc, "expected a macro call after 'call'");
    }
    auto def = parse_macro_body("caller", std::move(params), "call", "endcall", loc);
    if (!def) return def.err();
    return call_block_stmt{std::move(*call), std::move(*def)};
  }

  expected<filter_block_stmt> parse_filter_block(source_location loc) {
    filter_block_stmt s;
    auto filters = parse_filter_chain(true);
    if (!filters) return filters.err();
    s.filters = std::move(*filters);
    if (auto r = expect_block_end(); !r) return r.err();
    auto content = parse_body({"endfilter"}, "filter", loc);
    if (!content) return content.err();
    s.content = std::move(*content);
    if (auto r = read_end_tag(true); !r) return r.err();
    return s;
  }

  expected<with_stmt> parse_with(source_location loc) {
    with_stmt s;
    while (peek().kind != token_kind::block_end) {
      if (!s.assignments.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
      }
      auto target = parse_assign_target(false);
      if (!target) return target.err();
      if (auto r = expect_op("="); !r) return r.err();
      auto v = parse_expression();
      if (!v) return v.err();
      s.assignments.emplace_back(std::move(*target), std::move(*v));
    }
    next();  // %}
    auto content = parse_body({"endwith"}, "with", loc);
    if (!content) return content.err();
    s.content = std::move(*content);
    if (auto r = read_end_tag(true); !r) return r.err();
    return s;
  }

  // --- expressions --------------------------------------------------------------------------

  // Whether a tuple ends here: at '}}', '%}', ')' or a name in `extra_ends`.
  bool is_tuple_end(names extra_ends) const {
    const token& t = peek();
    if (t.kind == token_kind::print_end || t.kind == token_kind::block_end) return true;
    if (at_op(")")) return true;
    return t.kind == token_kind::name && contains(extra_ends, t.text);
  }

  // Expressions separated by commas: one expression, or a tuple (`a, b`).
  expected<expr_ptr> parse_tuple(bool with_conditional, bool explicit_parentheses, names extra_ends) {
    const source_location loc = peek().loc;
    std::vector<expr_ptr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
      }
      if (is_tuple_end(extra_ends)) break;
      auto e = with_conditional ? parse_expression() : parse_or();
      if (!e) return e;
      items.push_back(std::move(*e));
      if (!at_op(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items.front());
      if (!explicit_parentheses) return unexpected("an expression");
    }
    return make_expr(loc, list_expr{std::move(items), true});
  }

  expected<expr_ptr> parse_expression() {
    depth_guard guard(*this);
    if (guard.too_deep()) return too_deep();
    const source_location loc = peek().loc;
    auto e = parse_or();
    if (!e) return e;
    while (skip_name("if")) {
      auto condition = parse_or();
      if (!condition) return condition;
      expr_ptr otherwise;
      if (skip_name("else")) {
        auto o = parse_expression();
        if (!o) return o;
        otherwise = std::move(*o);
      }
      e = make_expr(loc, conditional_expr{std::move(*condition), std::move(*e), std::move(otherwise)});
      if (!e) return e;
    }
    return e;
  }

  // `operand (keyword operand)*`, left-associative: the `and` / `or` levels.
  template <typename Operand>
  expected<expr_ptr> parse_keyword_chain(std::string_view keyword, binary_op op, Operand operand) {
    auto left = (this->*operand)();
    while (left && at_name(keyword)) {
      const source_location loc = next().loc;
      auto right = (this->*operand)();
      if (!right) return right;
      left = make_expr(loc, binary_expr{op, std::move(*left), std::move(*right)});
    }
    return left;
  }

  expected<expr_ptr> parse_or() {
    return parse_keyword_chain("or", binary_op::logical_or, &parser::parse_and);
  }

  expected<expr_ptr> parse_and() {
    return parse_keyword_chain("and", binary_op::logical_and, &parser::parse_not);
  }

  expected<expr_ptr> parse_not() {
    if (at_name("not")) {
      depth_guard guard(*this);
      if (guard.too_deep()) return too_deep();
      const source_location loc = next().loc;
      auto operand = parse_not();
      if (!operand) return operand;
      return make_expr(loc, unary_expr{unary_op::logical_not, std::move(*operand)});
    }
    return parse_compare();
  }

  expected<expr_ptr> parse_compare() {
    const source_location loc = peek().loc;
    auto first = parse_math1();
    if (!first) return first;
    std::vector<std::pair<compare_op, expr_ptr>> rest;
    while (true) {
      compare_op op;
      if (at_op("==")) op = compare_op::eq;
      else if (at_op("!=")) op = compare_op::ne;
      else if (at_op("<")) op = compare_op::lt;
      else if (at_op("<=")) op = compare_op::le;
      else if (at_op(">")) op = compare_op::gt;
      else if (at_op(">=")) op = compare_op::ge;
      else if (at_name("in")) op = compare_op::in;
      else if (at_name("not") && at_name("in", 1)) {
        op = compare_op::not_in;
        next();
      } else {
        break;
      }
      next();
      auto operand = parse_math1();
      if (!operand) return operand;
      rest.emplace_back(op, std::move(*operand));
    }
    if (rest.empty()) return first;
    return make_expr(loc, compare_expr{std::move(*first), std::move(rest)});
  }

  // Left-associative binary operators of one precedence level.
  template <class Operand>
  expected<expr_ptr> parse_binary(Operand operand, std::initializer_list<std::pair<std::string_view, binary_op>> ops) {
    auto left = (this->*operand)();
    while (left) {
      const auto it = std::find_if(ops.begin(), ops.end(), [&](const auto& o) { return at_op(o.first); });
      if (it == ops.end()) break;
      const source_location loc = next().loc;
      auto right = (this->*operand)();
      if (!right) return right;
      left = make_expr(loc, binary_expr{it->second, std::move(*left), std::move(*right)});
    }
    return left;
  }

  expected<expr_ptr> parse_math1() {
    return parse_binary(&parser::parse_concat, {{"+", binary_op::add}, {"-", binary_op::subtract}});
  }
  expected<expr_ptr> parse_concat() { return parse_binary(&parser::parse_math2, {{"~", binary_op::concat}}); }
  expected<expr_ptr> parse_math2() {
    return parse_binary(&parser::parse_pow, {{"*", binary_op::multiply},
                                             {"/", binary_op::divide},
                                             {"//", binary_op::floor_divide},
                                             {"%", binary_op::modulo}});
  }
  expected<expr_ptr> parse_pow() { return parse_binary(&parser::parse_unary_filtered, {{"**", binary_op::power}}); }
  expected<expr_ptr> parse_unary_filtered() { return parse_unary(true); }

  expected<expr_ptr> parse_unary(bool with_filter) {
    depth_guard guard(*this);
    if (guard.too_deep()) return too_deep();
    const source_location loc = peek().loc;
    expected<expr_ptr> e = error{};
    if (at_op("-") || at_op("+")) {
      const unary_op op = at_op("-") ? unary_op::negate : unary_op::plus;
      next();
      auto operand = parse_unary(false);
      if (!operand) return operand;
      e = make_expr(loc, unary_expr{op, std::move(*operand)});
    } else {
      e = parse_primary();
    }
    if (e) e = parse_postfix(std::move(*e));
    if (e && with_filter) e = parse_filter_expr(std::move(*e));
    return e;
  }

  expected<expr_ptr> parse_primary() {
    const token& t = peek();
    const source_location loc = t.loc;
    switch (t.kind) {
      case token_kind::name: {
        const std::string n = next().text;
        if (n == "true" || n == "True") return make_expr(loc, literal_expr{value::boolean(true)});
        if (n == "false" || n == "False") return make_expr(loc, literal_expr{value::boolean(false)});
        if (n == "none" || n == "None") return make_expr(loc, literal_expr{value::none()});
        if (!macro_uses_.empty()) {
          macro_uses_.back().varargs = macro_uses_.back().varargs || n == "varargs";
          macro_uses_.back().kwargs = macro_uses_.back().kwargs || n == "kwargs";
        }
        return make_expr(loc, name_expr{n});
      }
      case token_kind::string: {
        std::string s = next().text;
        while (peek().kind == token_kind::string) s += next().text;  // adjacent literals concatenate
        return make_expr(loc, literal_expr{value::string(std::move(s))});
      }
      case token_kind::integer: return make_expr(loc, literal_expr{value::integer(next().integer)});
      case token_kind::floating: return make_expr(loc, literal_expr{value::number(next().floating)});
      case token_kind::op:
        if (t.text == "(") {
          next();
          auto e = parse_tuple(true, true, {});
          if (!e) return e;
          if (auto r = expect_op(")"); !r) return r.err();
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default: break;
    }
    return unexpected("an expression");
  }

  expected<expr_ptr> parse_list() {
    const source_location loc = next().loc;  // [
    std::vector<expr_ptr> items;
    while (!at_op("]")) {
      if (!items.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
        if (at_op("]")) break;
      }
      auto e = parse_expression();
      if (!e) return e;
      items.push_back(std::move(*e));
    }
    next();  // ]
    return make_expr(loc, list_expr{std::move(items), false});
  }

  expected<expr_ptr> parse_dict() {
    const source_location loc = next().loc;  // {
    std::vector<std::pair<expr_ptr, expr_ptr>> entries;
    while (!at_op("}")) {
      if (!entries.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
        if (at_op("}")) break;
      }
      auto key = parse_expression();
      if (!key) return key;
      if (auto r = expect_op(":"); !r) return r.err();
      auto v = parse_expression();
      if (!v) return v;
      entries.emplace_back(std::move(*key), std::move(*v));
    }
    next();  // }
    return make_expr(loc, dict_expr{std::move(entries)});
  }

  // Attribute access, subscripts, slices and calls after a primary expression.
  expected<expr_ptr> parse_postfix(expr_ptr e) {
    while (true) {
      const source_location loc = e->loc;  // errors point at the start of the expression
      if (at_op(".")) {
        next();
        const token& t = peek();
        expected<expr_ptr> made = error{};
        if (t.kind == token_kind::name) {
          made = make_expr(loc, attribute_expr{std::move(e), next().text});
        } else if (t.kind == token_kind::integer) {
          auto key = make_expr(t.loc, literal_expr{value::integer(next().integer)});
          if (!key) return key;
          made = make_expr(loc, item_expr{std::move(e), std::move(*key)});
        } else {
          return unexpected("an attribute name");
        }
        if (!made) return made;
        e = std::move(*made);
      } else if (at_op("[")) {
        auto s = parse_subscript(std::move(e));
        if (!s) return s;
        e = std::move(*s);
      } else if (at_op("(")) {
        auto c = parse_call(std::move(e));
        if (!c) return c;
        e = std::move(*c);
      } else {
        return e;
      }
    }
  }

  expected<expr_ptr> parse_subscript(expr_ptr object) {
    const source_location loc = object->loc;
    next();  // [
    std::array<expr_ptr, 3> parts;
    size_t part = 0;
    bool is_slice = false;
    while (!at_op("]")) {
      if (at_op(":")) {
        next();
        is_slice = true;
        if (++part > 2) return fail_here("a slice has at most 3 parts");
        continue;
      }
      if (at_op(",")) return fail_here("unsupported: subscripts with several indices");
      if (parts[part]) return unexpected("']'");
      auto e = parse_expression();
      if (!e) return e;
      parts[part] = std::move(*e);
    }
    next();  // ]
    if (!is_slice) {
      if (!parts[0]) return located(peek().loc, "expected an index inside '[]'");
      return make_expr(loc, item_expr{std::move(object), std::move(parts[0])});
    }
    return make_expr(loc, slice_expr{std::move(object), std::move(parts[0]), std::move(parts[1]), std::move(parts[2])});
  }

  expected<std::vector<argument>> parse_arguments() {
    next();  // (
    std::vector<argument> args;
    bool keywords = false;
    while (!at_op(")")) {
      if (!args.empty()) {
        if (auto r = expect_op(","); !r) return r.err();
        if (at_op(")")) break;
      }
      if (at_op("*") || at_op("**")) return fail_here("unsupported: *args and **kwargs in calls");
      argument a;
      if (peek().kind == token_kind::name && at_op("=", 1)) {
        a.keyword = next().text;
        next();  // =
        keywords = true;
      } else if (keywords) {
        return fail_here("positional argument follows keyword argument");
      }
      auto v = parse_expression();
      if (!v) return v.err();
      a.value = std::move(*v);
      args.push_back(std::move(a));
    }
    next();  // )
    return args;
  }

  expected<expr_ptr> parse_call(expr_ptr callee) {
    const source_location loc = callee->loc;
    auto args = parse_arguments();
    if (!args) return args.err();
    return make_expr(loc, call_expr{std::move(callee), std::move(*args)});
  }

  // Filters, tests and calls after a unary expression: `x | f(a) is t(b)`.
  expected<expr_ptr> parse_filter_expr(expr_ptr e) {
    while (true) {
      if (at_op("|")) {
        auto filters = parse_filter_chain();
        if (!filters) return filters.err();
        for (filter_call& f : *filters) {
          const source_location loc = f.loc;
          auto made = make_expr(loc, filter_expr{std::move(e), std::move(f)});
          if (!made) return made;
          e = std::move(*made);
        }
      } else if (at_name("is")) {
        auto t = parse_test(std::move(e));
        if (!t) return t;
        e = std::move(*t);
      } else if (at_op("(")) {
        auto c = parse_call(std::move(e));
        if (!c) return c;
        e = std::move(*c);
      } else {
        return e;
      }
    }
  }

  // `| name(args) | name2 ...`; with `start_inline` the first filter has no '|' (a filter block).
  expected<std::vector<filter_call>> parse_filter_chain(bool start_inline = false) {
    std::vector<filter_call> filters;
    while (start_inline || at_op("|")) {
      if (!start_inline) next();
      start_inline = false;
      filter_call f;
      f.loc = peek().loc;
      auto name = expect_name("a filter name");
      if (!name) return name.err();
      f.name = std::move(*name);
      f.fn = find_filter(f.name);
      if (f.fn == nullptr) return located(f.loc, "unknown filter '" + f.name + "'");
      if (at_op("(")) {
        auto args = parse_arguments();
        if (!args) return args.err();
        f.args = std::move(*args);
      }
      filters.push_back(std::move(f));
    }
    return filters;
  }

  expected<expr_ptr> parse_test(expr_ptr operand) {
    next();  // is
    test_expr t;
    t.operand = std::move(operand);
    t.negated = skip_name("not");
    const source_location loc = peek().loc;
    auto name = expect_name("a test name");
    if (!name) return name.err();
    t.name = std::move(*name);
    t.fn = find_test(t.name);
    if (t.fn == nullptr) return located(loc, "unknown test '" + t.name + "'");
    const token& a = peek();
    if (at_op("(")) {
      auto args = parse_arguments();
      if (!args) return args.err();
      t.args = std::move(*args);
    } else if ((a.kind == token_kind::name && a.text != "else" && a.text != "or" && a.text != "and") ||
               a.kind == token_kind::string || a.kind == token_kind::integer || a.kind == token_kind::floating ||
               at_op("[") || at_op("{")) {
      // One argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
      if (at_name("is")) return fail_here("tests cannot be chained with 'is'");
      auto arg = parse_primary();
      if (!arg) return arg;
      auto postfixed = parse_postfix(std::move(*arg));
      if (!postfixed) return postfixed;
      t.args.push_back(argument{"", std::move(*postfixed)});
    }
    return make_expr(loc, std::move(t));
  }

  std::vector<token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // for loops around the current position (break / continue are valid)
  struct macro_use {
    bool varargs = false;
    bool kwargs = false;
  };
  std::vector<macro_use> macro_uses_;  // per macro being parsed, innermost last
};

}  // namespace

expected<body> parse_template(std::string_view source) {
  auto tokens = tokenize(source);
  if (!tokens) return tokens.err();
  return parser(std::move(*tokens)).parse_all();
}

}  // namespace troupe::engine::chat
