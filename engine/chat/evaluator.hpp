// Runs a parsed template against a context: one evaluator per render, on the caller's stack.
//
// Scoping follows Jinja: the template's top level is one scope; each loop iteration, macro call,
// call-block body and {% with %} gets its own (a `set` inside them does not leak out; namespace()
// objects carry state across); {% if %} has none. Names resolve through the enclosing scopes, then
// the render context (messages, tools, bos_token...), then the global functions. A macro sees the
// top level and its arguments, not its caller's locals.
//
// Thread-safety: an evaluator belongs to one thread; it only reads the tree and the context, which
// may be shared with other renders.
#pragma once

#include <string>
#include <vector>

#include "common/expected.hpp"
#include "engine/chat/ast.hpp"
#include "engine/chat/limits.hpp"

namespace troupe::engine::chat {

class evaluator final : public render_state {
 public:
  evaluator(const body& root, const value& context, const render_limits& limits);

  [[nodiscard]] expected<std::string> run();

  [[nodiscard]] expected<void> charge(uint64_t units) override;
  [[nodiscard]] const render_limits& limits() const override { return limits_; }

  // A macro (or call-block body) call: binds `args` to the macro's parameters in a new scope whose
  // lookups continue at `parent_scope` (the top level, or the call block's scope) and renders the
  // body to a string.
  [[nodiscard]] expected<value> call_macro(const macro_def& macro, const call_arguments& args, size_t parent_scope);
  // Scope ids for callables that must find their scope again (see caller()).
  [[nodiscard]] size_t current_scope() const { return scopes_.size() - 1; }
  [[nodiscard]] uint64_t scope_serial(size_t scope) const;

 private:
  enum class flow { normal, break_loop, continue_loop };

  struct scope {
    std::vector<std::pair<std::string, value>> vars;
    size_t parent;    // where lookups continue; no_parent for the top level
    uint64_t serial;  // unique per scope ever opened in this render
  };
  static constexpr size_t no_parent = static_cast<size_t>(-1);

  // Opens a scope on construction, closes it on destruction.
  class scope_guard {
   public:
    scope_guard(evaluator& ev, size_t parent);
    ~scope_guard();
    scope_guard(const scope_guard&) = delete;
    scope_guard& operator=(const scope_guard&) = delete;

   private:
    evaluator& ev_;
  };

  // Counts evaluation nesting; an error past limits().max_depth.
  class depth_guard {
   public:
    explicit depth_guard(evaluator& ev) : ev_(ev) { ++ev_.depth_; }
    ~depth_guard() { --ev_.depth_; }
    depth_guard(const depth_guard&) = delete;
    depth_guard& operator=(const depth_guard&) = delete;
    [[nodiscard]] bool too_deep() const { return ev_.depth_ > ev_.limits_.max_depth; }

   private:
    evaluator& ev_;
  };

  [[nodiscard]] value lookup(std::string_view name) const;
  void assign(std::string name, value v);
  [[nodiscard]] expected<void> store(const assign_target& target, value v, source_location loc);

  [[nodiscard]] expected<void> emit(std::string_view text, source_location loc);
  // Runs `content` with output going to a string of its own, which it returns.
  [[nodiscard]] expected<std::string> capture(const body& content);

  [[nodiscard]] expected<flow> exec_body(const body& content);
  [[nodiscard]] expected<flow> exec(const stmt& s);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const text_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const print_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const loop_control_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const if_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const for_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const set_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const macro_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const call_block_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const filter_block_stmt& n);
  [[nodiscard]] expected<flow> exec_node(const stmt& s, const with_stmt& n);

  [[nodiscard]] expected<value> eval(const expr& e);
  [[nodiscard]] expected<value> eval_node(const expr& e, const literal_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const name_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const list_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const dict_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const attribute_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const item_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const slice_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const call_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const filter_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const test_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const unary_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const binary_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const compare_expr& n);
  [[nodiscard]] expected<value> eval_node(const expr& e, const conditional_expr& n);

  [[nodiscard]] expected<call_arguments> eval_arguments(const std::vector<argument>& args);
  [[nodiscard]] expected<value> apply_filters(value v, const std::vector<filter_call>& filters);
  // `v`, or the error "'<e>' is undefined" when it is undefined and `e` is read into.
  [[nodiscard]] expected<value> defined(const expr& e, value v);
  [[nodiscard]] expected<value> call(const expr& e, const value& callee, const call_arguments& args);

  const body& root_;
  const value& context_;
  const render_limits limits_;
  std::vector<scope> scopes_;
  uint64_t next_serial_ = 0;
  std::string output_;
  std::string* out_ = &output_;  // where text goes: output_ or a capture()'s buffer
  uint64_t work_ = 0;
  uint64_t iterations_ = 0;
  uint32_t depth_ = 0;
};

}  // namespace troupe::engine::chat
