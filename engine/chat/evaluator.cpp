// The tree-walking evaluator (see evaluator.hpp). Every statement and expression goes through
// exec() / eval(), which count depth and work and put the source location on errors.
#include "engine/chat/evaluator.hpp"

#include <algorithm>

#include "engine/chat/access.hpp"
#include "engine/chat/builtins.hpp"
#include "engine/chat/operators.hpp"
#include "engine/chat/printing.hpp"

namespace troupe::engine::chat {
namespace {

// A macro, or a call block's body (caller()), as a callable value. It keeps a pointer to the
// evaluator that defined it: such values never outlive their render (a render returns text only).
class macro_function final : public callable {
 public:
  macro_function(const macro_def& def, evaluator& ev, size_t scope, uint64_t serial)
      : def_(def), ev_(ev), scope_(scope), serial_(serial) {}

  [[nodiscard]] std::string_view name() const override { return def_.name; }

  [[nodiscard]] expected<value> call(render_state&, const call_arguments& args) const override {
    // caller() runs in its call block's scope, which must still be open.
    if (ev_.scope_serial(scope_) != serial_) return fail(quoted(def_.name) + " called after its call block ended");
    return ev_.call_macro(def_, args, scope_);
  }

 private:
  const macro_def& def_;
  evaluator& ev_;
  size_t scope_;
  uint64_t serial_;
};

// loop.cycle(a, b, ...): the argument at the iteration's index, modulo their count.
class loop_cycle final : public callable {
 public:
  explicit loop_cycle(size_t index) : index_(index) {}
  [[nodiscard]] std::string_view name() const override { return "cycle"; }
  [[nodiscard]] expected<value> call(render_state&, const call_arguments& args) const override {
    if (args.positional.empty() || !args.keyword.empty()) return fail("cycle() needs at least one positional argument");
    return args.positional[index_ % args.positional.size()];
  }

 private:
  size_t index_;
};

value loop_object(const std::vector<const value*>& items, size_t i) {
  const auto n = static_cast<int64_t>(items.size());
  const auto k = static_cast<int64_t>(i);
  object_ptr loop = make_object();
  loop->set("index", value::integer(k + 1));
  loop->set("index0", value::integer(k));
  loop->set("revindex", value::integer(n - k));
  loop->set("revindex0", value::integer(n - k - 1));
  loop->set("first", value::boolean(i == 0));
  loop->set("last", value::boolean(k == n - 1));
  loop->set("length", value::integer(n));
  if (i > 0) loop->set("previtem", *items[i - 1]);
  if (k + 1 < n) loop->set("nextitem", *items[i + 1]);
  loop->set("depth", value::integer(1));
  loop->set("depth0", value::integer(0));
  loop->set("cycle", value::function(std::make_shared<loop_cycle>(i)));
  return value::dict(std::move(loop));
}

// How an expression reads in an error message: "messages[0]['role']".
std::string describe(const expr& e) {
  if (const auto* n = std::get_if<name_expr>(&e.node)) return n->name;
  if (const auto* n = std::get_if<attribute_expr>(&e.node)) return describe(*n->object) + "." + n->name;
  if (const auto* n = std::get_if<item_expr>(&e.node)) {
    std::string key = "...";
    if (const auto* k = std::get_if<literal_expr>(&n->key->node)) {
      key.clear();
      append_repr(key, k->v);
    }
    return describe(*n->object) + "[" + key + "]";
  }
  if (const auto* n = std::get_if<call_expr>(&e.node)) return describe(*n->callee) + "()";
  if (const auto* n = std::get_if<filter_expr>(&e.node)) return describe(*n->operand) + " | " + n->filter.name;
  if (const auto* n = std::get_if<literal_expr>(&e.node)) {
    std::string s;
    append_repr(s, n->v);
    return s;
  }
  return "expression";
}

// Whether evaluating `e` builds a new value (charged by its size) rather than reading a shared one.
bool builds_value(const expr& e) {
  return std::holds_alternative<list_expr>(e.node) || std::holds_alternative<dict_expr>(e.node) ||
         std::holds_alternative<slice_expr>(e.node) || std::holds_alternative<call_expr>(e.node) ||
         std::holds_alternative<filter_expr>(e.node) || std::holds_alternative<binary_expr>(e.node);
}

}  // namespace

evaluator::evaluator(const body& root, const value& context, const render_limits& limits)
    : root_(root), context_(context), limits_(limits) {
  scopes_.push_back(scope{{}, no_parent, next_serial_++});
}

evaluator::scope_guard::scope_guard(evaluator& ev, size_t parent) : ev_(ev) {
  ev_.scopes_.push_back(scope{{}, parent, ev_.next_serial_++});
}

evaluator::scope_guard::~scope_guard() { ev_.scopes_.pop_back(); }

uint64_t evaluator::scope_serial(size_t scope) const {
  return scope < scopes_.size() ? scopes_[scope].serial : UINT64_MAX;
}

expected<std::string> evaluator::run() {
  auto r = exec_body(root_);
  if (!r) return r.err();
  return std::move(output_);
}

expected<void> evaluator::charge(uint64_t units) {
  work_ += units;
  if (work_ > limits_.max_work) {
    return fail("the template exceeded its work limit (" + std::to_string(limits_.max_work) + " units)");
  }
  return {};
}

value evaluator::lookup(std::string_view name) const {
  for (size_t i = scopes_.size() - 1; i != no_parent; i = scopes_[i].parent) {
    for (const auto& [k, v] : scopes_[i].vars) {
      if (k == name) return v;
    }
  }
  if (context_.is_dict()) {
    if (const value* v = context_.as_object().find(name)) return *v;
  }
  if (const value* f = find_global(name)) return *f;
  return {};
}

void evaluator::assign(std::string name, value v) {
  auto& vars = scopes_.back().vars;
  for (auto& [k, old] : vars) {
    if (k == name) {
      old = std::move(v);
      return;
    }
  }
  vars.emplace_back(std::move(name), std::move(v));
}

expected<void> evaluator::store(const assign_target& target, value v, source_location loc) {
  if (!target.attribute.empty()) {
    const value ns = lookup(target.names[0]);
    if (!ns.is_namespace()) {
      return located(loc, "cannot set '" + target.names[0] + "." + target.attribute + "': '" + target.names[0] +
                              "' is a " + std::string(type_name(ns)) + ", not a namespace()");
    }
    ns.mutable_object().set(target.attribute, std::move(v));
    return {};
  }
  if (!target.unpack) {
    assign(target.names[0], std::move(v));
    return {};
  }
  auto items = to_list(v);
  if (!items) return located(loc, "cannot unpack: " + items.message());
  const size_t n = items->items().size();
  if (n != target.names.size()) {
    return located(loc, std::string(n > target.names.size() ? "too many" : "not enough") +
                            " values to unpack (expected " + std::to_string(target.names.size()) + ", got " +
                            std::to_string(n) + ")");
  }
  for (size_t i = 0; i < n; ++i) assign(target.names[i], items->items()[i]);
  return {};
}

expected<void> evaluator::emit(std::string_view text, source_location loc) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    return located(loc, "the output is larger than the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  if (auto r = charge(text.size()); !r) return located(loc, r.message());
  out_->append(text);
  return {};
}

expected<std::string> evaluator::capture(const body& content) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  auto r = exec_body(content);
  out_ = saved;
  if (!r) return r.err();
  return buffer;
}

// --- statements ---------------------------------------------------------------------------------

expected<evaluator::flow> evaluator::exec_body(const body& content) {
  for (const stmt& s : content) {
    auto f = exec(s);
    if (!f || *f != flow::normal) return f;
  }
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec(const stmt& s) {
  depth_guard guard(*this);
  if (guard.too_deep()) {
    return located(s.loc, "template nested deeper than " + std::to_string(limits_.max_depth) +
                              " levels (a recursive macro?)");
  }
  if (auto r = charge(1); !r) return located(s.loc, r.message());
  return std::visit([&](const auto& n) { return exec_node(s, n); }, s.node);
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const text_stmt& n) {
  if (auto r = emit(n.text, s.loc); !r) return r.err();
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const print_stmt& n) {
  auto v = eval(*n.value);
  if (!v) return v.err();
  auto r = v->is_string() ? emit(v->as_string(), s.loc) : emit(to_str(*v), s.loc);
  if (!r) return r.err();
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt&, const loop_control_stmt& n) {
  return n.is_break ? flow::break_loop : flow::continue_loop;
}

expected<evaluator::flow> evaluator::exec_node(const stmt&, const if_stmt& n) {
  for (const auto& [test, content] : n.branches) {
    auto v = eval(*test);
    if (!v) return v.err();
    if (v->truthy()) return exec_body(content);
  }
  return exec_body(n.otherwise);
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const for_stmt& n) {
  auto iterable = eval(*n.iterable);
  if (!iterable) return iterable.err();
  auto list = to_list(*iterable);
  if (!list) return located(n.iterable->loc, list.message());
  const std::vector<value>& all = list->items();

  scope_guard loop_scope(*this, current_scope());
  const auto next_iteration = [&]() -> expected<void> {
    if (++iterations_ > limits_.max_loop_iterations) {
      return located(s.loc, "more than " + std::to_string(limits_.max_loop_iterations) + " loop iterations");
    }
    scopes_.back().vars.clear();  // each iteration has a fresh scope, as in Jinja
    return charge(1);
  };

  // `for x in xs if cond`: the filter sees the loop variables, not `loop`.
  std::vector<const value*> items;
  items.reserve(all.size());
  for (const value& item : all) {
    if (!n.filter) {
      items.push_back(&item);
      continue;
    }
    if (auto r = next_iteration(); !r) return located(s.loc, r.message());
    if (auto r = store(n.target, item, s.loc); !r) return r.err();
    auto keep = eval(*n.filter);
    if (!keep) return keep.err();
    if (keep->truthy()) items.push_back(&item);
  }

  for (size_t i = 0; i < items.size(); ++i) {
    if (auto r = next_iteration(); !r) return located(s.loc, r.message());
    assign("loop", loop_object(items, i));
    if (auto r = store(n.target, *items[i], s.loc); !r) return r.err();
    auto f = exec_body(n.content);
    if (!f) return f;
    if (*f == flow::break_loop) break;
  }
  if (items.empty()) {
    scopes_.back().vars.clear();
    auto f = exec_body(n.otherwise);
    if (!f) return f;
  }
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const set_stmt& n) {
  value v;
  if (n.value) {
    auto e = eval(*n.value);
    if (!e) return e.err();
    v = std::move(*e);
  } else {
    auto text = capture(n.block);
    if (!text) return text.err();
    auto filtered = apply_filters(value::string(std::move(*text)), n.filters);
    if (!filtered) return filtered.err();
    v = std::move(*filtered);
  }
  if (auto r = store(n.target, std::move(v), s.loc); !r) return r.err();
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt&, const macro_stmt& n) {
  // A macro sees the top level (scope 0) and its arguments.
  assign(n.def->name, value::function(std::make_shared<macro_function>(*n.def, *this, 0, scope_serial(0))));
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const call_block_stmt& n) {
  const auto& c = std::get<call_expr>(n.call->node);
  auto callee = eval(*c.callee);
  if (!callee) return callee.err();
  auto args = eval_arguments(c.args);
  if (!args) return args.err();
  const size_t here = current_scope();
  args->keyword.emplace_back(
      "caller", value::function(std::make_shared<macro_function>(*n.caller, *this, here, scope_serial(here))));
  auto result = call(*c.callee, *callee, *args);
  if (!result) return located(n.call->loc, result.message());
  if (auto r = emit(to_str(*result), s.loc); !r) return r.err();
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const filter_block_stmt& n) {
  auto text = capture(n.content);
  if (!text) return text.err();
  auto v = apply_filters(value::string(std::move(*text)), n.filters);
  if (!v) return v.err();
  if (auto r = emit(to_str(*v), s.loc); !r) return r.err();
  return flow::normal;
}

expected<evaluator::flow> evaluator::exec_node(const stmt& s, const with_stmt& n) {
  std::vector<value> values;
  for (const auto& [target, e] : n.assignments) {
    auto v = eval(*e);
    if (!v) return v.err();
    values.push_back(std::move(*v));
  }
  scope_guard with_scope(*this, current_scope());
  for (size_t i = 0; i < values.size(); ++i) {
    if (auto r = store(n.assignments[i].first, std::move(values[i]), s.loc); !r) return r.err();
  }
  return exec_body(n.content);
}

expected<value> evaluator::call_macro(const macro_def& macro, const call_arguments& args, size_t parent_scope) {
  depth_guard guard(*this);
  if (guard.too_deep()) {
    return fail("template nested deeper than " + std::to_string(limits_.max_depth) + " levels (a recursive macro?)");
  }
  // A call costs far more than an expression (a scope, a buffer, argument binding): charged so,
  // so that exponential recursion runs into the work limit within the intended time.
  if (auto r = charge(cost_per_macro_call); !r) return r.err();
  const auto where = [&] { return "macro '" + macro.name + "'"; };
  scope_guard macro_scope(*this, parent_scope);
  const size_t n = macro.params.size();
  std::vector<bool> bound(n, false);
  for (size_t i = 0; i < args.positional.size() && i < n; ++i) {
    assign(macro.params[i].name, args.positional[i]);
    bound[i] = true;
  }
  if (args.positional.size() > n) {
    if (!macro.uses_varargs) return fail(where() + " takes not more than " + std::to_string(n) + " argument(s)");
    assign("varargs",
           value::list({args.positional.begin() + static_cast<std::ptrdiff_t>(n), args.positional.end()}, true));
  } else if (macro.uses_varargs) {
    assign("varargs", value::list({}, true));
  }
  object_ptr extra = macro.uses_kwargs ? make_object() : nullptr;
  for (const auto& keyword : args.keyword) {
    const std::string& key = keyword.first;  // (a plain reference: lambdas cannot capture bindings in clang 14)
    const value& v = keyword.second;
    if (key == "caller") {
      assign("caller", v);
      continue;
    }
    const auto it = std::find_if(macro.params.begin(), macro.params.end(),
                                 [&](const parameter& p) { return p.name == key; });
    if (it == macro.params.end()) {
      if (!macro.uses_kwargs) return fail(where() + " takes no keyword argument '" + key + "'");
      extra->set(key, v);
      continue;
    }
    const auto i = static_cast<size_t>(it - macro.params.begin());
    if (bound[i]) return fail(where() + " got multiple values for argument '" + key + "'");
    assign(key, v);
    bound[i] = true;
  }
  if (macro.uses_kwargs) assign("kwargs", value::dict(std::move(extra)));
  // Defaults are evaluated in the macro's scope, after the arguments (they may use earlier ones).
  for (size_t i = 0; i < n; ++i) {
    if (bound[i]) continue;
    value v;  // a missing argument without a default is undefined
    if (macro.params[i].default_value) {
      auto d = eval(*macro.params[i].default_value);
      if (!d) return d;
      v = std::move(*d);
    }
    assign(macro.params[i].name, std::move(v));
  }
  auto text = capture(macro.content);
  if (!text) return text.err();
  return value::string(std::move(*text));
}

// --- expressions --------------------------------------------------------------------------------

expected<value> evaluator::eval(const expr& e) {
  depth_guard guard(*this);
  if (guard.too_deep()) {
    return located(e.loc, "template nested deeper than " + std::to_string(limits_.max_depth) +
                              " levels (a recursive macro?)");
  }
  auto v = std::visit([&](const auto& n) { return eval_node(e, n); }, e.node);
  if (!v) return located(e.loc, v.message());
  if (auto r = charge(1 + (builds_value(e) ? weight(*v) : 0)); !r) return located(e.loc, r.message());
  if (v->depth() > max_value_depth) {
    return located(e.loc, "lists and dicts nested deeper than " + std::to_string(max_value_depth) + " levels");
  }
  return v;
}

expected<value> evaluator::defined(const expr& e, value v) {
  if (v.is_undefined()) return located(e.loc, quoted(describe(e)) + " is undefined");
  return v;
}

expected<call_arguments> evaluator::eval_arguments(const std::vector<argument>& args) {
  call_arguments out;
  for (const argument& a : args) {
    auto v = eval(*a.value);
    if (!v) return v.err();
    if (a.keyword.empty()) {
      out.positional.push_back(std::move(*v));
    } else {
      for (const auto& [k, existing] : out.keyword) {
        if (k == a.keyword) return located(a.value->loc, "keyword argument '" + k + "' repeated");
      }
      out.keyword.emplace_back(a.keyword, std::move(*v));
    }
  }
  return out;
}

expected<value> evaluator::apply_filters(value v, const std::vector<filter_call>& filters) {
  for (const filter_call& f : filters) {
    if (auto r = charge(weight(v)); !r) return located(f.loc, r.message());
    auto args = eval_arguments(f.args);
    if (!args) return args.err();
    auto r = f.fn(*this, v, *args);
    if (!r) return located(f.loc, r.message());
    v = std::move(*r);
  }
  return v;
}

expected<value> evaluator::call(const expr& e, const value& callee, const call_arguments& args) {
  if (callee.is_undefined()) return located(e.loc, quoted(describe(e)) + " is undefined");
  if (!callee.is_function()) return fail(quoted(type_name(callee)) + " object is not callable");
  return callee.as_function().call(*this, args);
}

expected<value> evaluator::eval_node(const expr&, const literal_expr& n) { return n.v; }

expected<value> evaluator::eval_node(const expr&, const name_expr& n) { return lookup(n.name); }

expected<value> evaluator::eval_node(const expr&, const list_expr& n) {
  std::vector<value> items;
  items.reserve(n.items.size());
  for (const expr_ptr& item : n.items) {
    auto v = eval(*item);
    if (!v) return v;
    items.push_back(std::move(*v));
  }
  return value::list(std::move(items), n.tuple);
}

expected<value> evaluator::eval_node(const expr&, const dict_expr& n) {
  object_ptr o = make_object();
  for (const auto& [k, v] : n.entries) {
    auto key = eval(*k);
    if (!key) return key;
    if (!key->is_string()) {
      return located(k->loc, "dict keys must be strings here, not " + std::string(type_name(*key)));
    }
    auto item = eval(*v);
    if (!item) return item;
    o->set(key->as_string(), std::move(*item));
  }
  return value::dict(std::move(o));
}

expected<value> evaluator::eval_node(const expr&, const attribute_expr& n) {
  auto obj = eval(*n.object);
  if (!obj) return obj;
  auto d = defined(*n.object, std::move(*obj));
  if (!d) return d;
  return get_attribute(*d, n.name);
}

expected<value> evaluator::eval_node(const expr&, const item_expr& n) {
  auto obj = eval(*n.object);
  if (!obj) return obj;
  auto d = defined(*n.object, std::move(*obj));
  if (!d) return d;
  auto key = eval(*n.key);
  if (!key) return key;
  if (d->is_string()) {
    if (auto r = charge(weight(*d)); !r) return r.err();  // finding the n-th character reads the text
  }
  return get_item(*d, *key);
}

expected<value> evaluator::eval_node(const expr&, const slice_expr& n) {
  auto obj = eval(*n.object);
  if (!obj) return obj;
  auto d = defined(*n.object, std::move(*obj));
  if (!d) return d;
  if (auto r = charge(weight(*d)); !r) return r.err();
  value parts[3];
  const expr_ptr* exprs[3] = {&n.start, &n.stop, &n.step};
  for (size_t i = 0; i < 3; ++i) {
    if (!*exprs[i]) continue;
    auto v = eval(**exprs[i]);
    if (!v) return v;
    parts[i] = std::move(*v);
  }
  return get_slice(*this, *d, parts[0], parts[1], parts[2]);
}

expected<value> evaluator::eval_node(const expr&, const call_expr& n) {
  auto callee = eval(*n.callee);
  if (!callee) return callee;
  auto args = eval_arguments(n.args);
  if (!args) return args.err();
  return call(*n.callee, *callee, *args);
}

expected<value> evaluator::eval_node(const expr&, const filter_expr& n) {
  auto operand = eval(*n.operand);
  if (!operand) return operand;
  if (auto r = charge(weight(*operand)); !r) return r.err();  // filters read their operand
  auto args = eval_arguments(n.filter.args);
  if (!args) return args.err();
  return n.filter.fn(*this, *operand, *args);
}

expected<value> evaluator::eval_node(const expr&, const test_expr& n) {
  auto operand = eval(*n.operand);
  if (!operand) return operand;
  if (auto r = charge(weight(*operand)); !r) return r.err();
  auto args = eval_arguments(n.args);
  if (!args) return args.err();
  auto r = n.fn(*this, *operand, *args);
  if (!r) return fail("test '" + n.name + "': " + r.message());
  return value::boolean(*r != n.negated);
}

expected<value> evaluator::eval_node(const expr&, const unary_expr& n) {
  auto operand = eval(*n.operand);
  if (!operand) return operand;
  if (n.op == unary_op::logical_not) return value::boolean(!operand->truthy());
  auto d = defined(*n.operand, std::move(*operand));
  if (!d) return d;
  const char* sign = n.op == unary_op::negate ? "-" : "+";
  if (d->is_float()) return value::number(n.op == unary_op::negate ? -d->as_double() : d->as_double());
  if (d->is_int() || d->is_bool()) {
    const int64_t i = d->is_bool() ? d->as_bool() : d->as_int();
    if (n.op == unary_op::plus) return value::integer(i);
    if (i == INT64_MIN) return fail("integer overflow (this interpreter's integers are 64-bit)");
    return value::integer(-i);
  }
  return fail(std::string("bad operand type for unary ") + sign + ": '" + std::string(type_name(*d)) + "'");
}

expected<value> evaluator::eval_node(const expr&, const binary_expr& n) {
  auto left = eval(*n.left);
  if (!left) return left;
  if (n.op == binary_op::logical_and || n.op == binary_op::logical_or) {
    // Python returns the deciding operand itself, not a bool.
    if (left->truthy() == (n.op == binary_op::logical_or)) return left;
    return eval(*n.right);
  }
  auto right = eval(*n.right);
  if (!right) return right;
  if (n.op != binary_op::concat) {
    if (auto d = defined(*n.left, *left); !d) return d;
    if (auto d = defined(*n.right, *right); !d) return d;
  }
  return apply_binary(*this, n.op, *left, *right);
}

expected<value> evaluator::eval_node(const expr&, const compare_expr& n) {
  auto left = eval(*n.first);
  if (!left) return left;
  const expr* left_expr = n.first.get();
  for (const auto& [op, right_expr] : n.rest) {
    auto right = eval(*right_expr);
    if (!right) return right;
    const bool ordering = op != compare_op::eq && op != compare_op::ne && op != compare_op::in && op != compare_op::not_in;
    if (ordering) {
      if (auto d = defined(*left_expr, *left); !d) return d;
      if (auto d = defined(*right_expr, *right); !d) return d;
    }
    auto holds = compare(*this, op, *left, *right);
    if (!holds) return holds.err();
    if (!*holds) return value::boolean(false);
    left = std::move(right);
    left_expr = right_expr.get();
  }
  return value::boolean(true);
}

expected<value> evaluator::eval_node(const expr&, const conditional_expr& n) {
  auto condition = eval(*n.condition);
  if (!condition) return condition;
  if (condition->truthy()) return eval(*n.then);
  if (n.otherwise) return eval(*n.otherwise);
  return value{};
}

}  // namespace troupe::engine::chat
