// The syntax tree of a parsed template: expressions and statements, each with its place in the
// source. Built once by the parser, then only read (renders share it across threads).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "engine/chat/callable.hpp"
#include "engine/chat/source_location.hpp"
#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

struct expr;
using expr_ptr = std::unique_ptr<const expr>;

// f(a, key=b): keyword is empty for a positional argument.
struct argument {
  std::string keyword;
  expr_ptr value;
};

// A filter (`x | name(args)`) or test (`x is name args`), resolved when parsed: an unknown name is a
// parse error, as in Jinja.
using filter_fn = expected<value> (*)(render_state& state, const value& operand, const call_arguments& args);
using test_fn = expected<bool> (*)(render_state& state, const value& operand, const call_arguments& args);

struct filter_call {
  std::string name;
  filter_fn fn = nullptr;
  std::vector<argument> args;
  source_location loc;
};

enum class unary_op : uint8_t { negate, plus, logical_not };
enum class binary_op : uint8_t {
  add, subtract, multiply, divide, floor_divide, modulo, power, concat, logical_and, logical_or
};
enum class compare_op : uint8_t { eq, ne, lt, le, gt, ge, in, not_in };

struct literal_expr { value v; };
struct name_expr { std::string name; };
struct list_expr { std::vector<expr_ptr> items; bool tuple = false; };
struct dict_expr { std::vector<std::pair<expr_ptr, expr_ptr>> entries; };
struct attribute_expr { expr_ptr object; std::string name; };        // x.name
struct item_expr { expr_ptr object; expr_ptr key; };                  // x[key], x.0
struct slice_expr { expr_ptr object; expr_ptr start, stop, step; };   // x[a:b:c]; absent parts are null
struct call_expr { expr_ptr callee; std::vector<argument> args; };
struct filter_expr { expr_ptr operand; filter_call filter; };
struct test_expr {
  expr_ptr operand;
  std::string name;
  test_fn fn = nullptr;
  std::vector<argument> args;
  bool negated = false;
};
struct unary_expr { unary_op op; expr_ptr operand; };
struct binary_expr { binary_op op; expr_ptr left, right; };
// a < b <= c: Python's chained comparison.
struct compare_expr { expr_ptr first; std::vector<std::pair<compare_op, expr_ptr>> rest; };
// `then if condition else otherwise`; without else, a false condition gives undefined.
struct conditional_expr { expr_ptr condition, then, otherwise; };

struct expr {
  source_location loc;
  std::variant<literal_expr, name_expr, list_expr, dict_expr, attribute_expr, item_expr, slice_expr, call_expr,
               filter_expr, test_expr, unary_expr, binary_expr, compare_expr, conditional_expr>
      node;
  uint32_t height = 1;  // of this subtree; the parser bounds it (see max_parse_depth)
};

struct stmt;
using body = std::vector<stmt>;

// Where `set` and `for` store: one name, names unpacked from a sequence (`k, v`), or a namespace
// attribute (`ns.attr`, set only).
struct assign_target {
  std::vector<std::string> names;
  bool unpack = false;
  std::string attribute;  // non-empty: names[0].attribute
};

struct parameter {
  std::string name;
  expr_ptr default_value;  // null: required
};

// A macro, or the body of a call block (which macros reach as caller()).
struct macro_def {
  std::string name;
  std::vector<parameter> params;
  body content;
  bool uses_varargs = false;  // the body reads `varargs`: extra positional arguments are allowed
  bool uses_kwargs = false;   // the body reads `kwargs`: unknown keyword arguments are allowed
};

struct text_stmt { std::string text; };
struct print_stmt { expr_ptr value; };
struct if_stmt {
  std::vector<std::pair<expr_ptr, body>> branches;  // if, elif...
  body otherwise;
};
struct for_stmt {
  assign_target target;
  expr_ptr iterable;
  expr_ptr filter;  // `for x in xs if cond`; null when absent
  body content;
  body otherwise;   // runs when nothing was iterated
};
struct set_stmt {
  assign_target target;
  expr_ptr value;                    // `{% set x = value %}`; null for the block form
  body block;                        // `{% set x %}block{% endset %}`
  std::vector<filter_call> filters;  // `{% set x | filters %}`
};
struct macro_stmt { std::unique_ptr<const macro_def> def; };
struct call_block_stmt {
  expr_ptr call;  // a call_expr: the macro and its arguments
  std::unique_ptr<const macro_def> caller;
};
struct filter_block_stmt {
  std::vector<filter_call> filters;
  body content;
};
struct with_stmt {
  std::vector<std::pair<assign_target, expr_ptr>> assignments;
  body content;
};
struct loop_control_stmt { bool is_break = false; };

struct stmt {
  source_location loc;
  std::variant<text_stmt, print_stmt, if_stmt, for_stmt, set_stmt, macro_stmt, call_block_stmt, filter_block_stmt,
               with_stmt, loop_control_stmt>
      node;
};

}  // namespace troupe::engine::chat
