// Jinja's tests (see tests.hpp): each is a predicate on the operand and at most one argument.
#include "engine/chat/tests.hpp"

#include <array>

#include "engine/chat/operators.hpp"
#include "engine/chat/printing.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

// A test that takes no argument.
template <bool (*Predicate)(const value&)>
expected<bool> unary(render_state&, const value& v, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("this test takes no argument");
  return Predicate(v);
}

// The single argument of a test, or an error.
expected<const value*> argument_of(std::string_view test, const call_arguments& args) {
  auto a = bind_arguments(test, args, {"other"});
  if (!a) return a.err();
  if ((*a)[0] == nullptr) return fail("test '" + std::string(test) + "' needs an argument");
  return (*a)[0];
}

template <compare_op Op>
expected<bool> comparison(render_state& state, const value& v, const call_arguments& args) {
  auto other = argument_of("comparison", args);
  if (!other) return other.err();
  return compare(state, Op, v, **other);
}

bool is_defined(const value& v) { return !v.is_undefined(); }
bool is_undefined(const value& v) { return v.is_undefined(); }
bool is_none(const value& v) { return v.is_none(); }
bool is_boolean(const value& v) { return v.is_bool(); }
bool is_true(const value& v) { return v.is_bool() && v.as_bool(); }
bool is_false(const value& v) { return v.is_bool() && !v.as_bool(); }
bool is_integer(const value& v) { return v.is_int(); }
bool is_float(const value& v) { return v.is_float(); }
bool is_number(const value& v) { return v.is_number(); }
bool is_string(const value& v) { return v.is_string(); }
bool is_mapping(const value& v) { return v.is_dict(); }
bool is_callable(const value& v) { return v.is_function(); }
bool is_escaped(const value&) { return false; }  // no Markup strings without autoescaping
// Python: iter(v) works (Jinja's Undefined iterates as empty).
bool is_iterable(const value& v) { return v.is_string() || v.is_array() || v.is_dict() || v.is_undefined(); }
// Python: len(v) and v.__getitem__ exist (Undefined has both).
bool is_sequence(const value& v) { return is_iterable(v); }
bool is_lower(const value& v) { return text::is_lower(to_str(v)); }
bool is_upper(const value& v) { return text::is_upper(to_str(v)); }

// odd / even / divisibleby: value % n, as Python computes it.
expected<bool> remainder_is(render_state& state, const value& v, const value& divisor, int64_t expected_remainder) {
  auto r = apply_binary(state, binary_op::modulo, v, divisor);
  if (!r) return r.err();
  return equal(*r, value::integer(expected_remainder));
}

expected<bool> is_odd(render_state& state, const value& v, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("odd takes no argument");
  return remainder_is(state, v, value::integer(2), 1);
}

expected<bool> is_even(render_state& state, const value& v, const call_arguments& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return fail("even takes no argument");
  return remainder_is(state, v, value::integer(2), 0);
}

expected<bool> is_divisible_by(render_state& state, const value& v, const call_arguments& args) {
  auto n = argument_of("divisibleby", args);
  if (!n) return n.err();
  return remainder_is(state, v, **n, 0);
}

expected<bool> is_in(render_state& state, const value& v, const call_arguments& args) {
  auto seq = argument_of("in", args);
  if (!seq) return seq.err();
  return contains(state, **seq, v);
}

// Python's `is`: the same container or callable; scalars of the same type and value.
expected<bool> is_same_as(render_state& state, const value& v, const call_arguments& args) {
  auto other = argument_of("sameas", args);
  if (!other) return other.err();
  const value& o = **other;
  if (v.type() != o.type()) return false;
  if (v.identity() != nullptr) return v.identity() == o.identity();
  uint64_t work = 0;
  const bool same = equal(v, o, work);
  if (auto r = state.charge(work * cost_per_comparison); !r) return r.err();
  return same;
}

struct test_entry {
  std::string_view name;
  test_fn fn;
};

constexpr std::array<test_entry, 37> tests = {{
    {"boolean", unary<is_boolean>},
    {"callable", unary<is_callable>},
    {"defined", unary<is_defined>},
    {"divisibleby", is_divisible_by},
    {"eq", comparison<compare_op::eq>},
    {"equalto", comparison<compare_op::eq>},
    {"==", comparison<compare_op::eq>},
    {"escaped", unary<is_escaped>},
    {"even", is_even},
    {"false", unary<is_false>},
    {"float", unary<is_float>},
    {"ge", comparison<compare_op::ge>},
    {">=", comparison<compare_op::ge>},
    {"greaterthan", comparison<compare_op::gt>},
    {"gt", comparison<compare_op::gt>},
    {">", comparison<compare_op::gt>},
    {"in", is_in},
    {"integer", unary<is_integer>},
    {"iterable", unary<is_iterable>},
    {"le", comparison<compare_op::le>},
    {"<=", comparison<compare_op::le>},
    {"lessthan", comparison<compare_op::lt>},
    {"lt", comparison<compare_op::lt>},
    {"<", comparison<compare_op::lt>},
    {"lower", unary<is_lower>},
    {"mapping", unary<is_mapping>},
    {"ne", comparison<compare_op::ne>},
    {"!=", comparison<compare_op::ne>},
    {"none", unary<is_none>},
    {"number", unary<is_number>},
    {"odd", is_odd},
    {"sameas", is_same_as},
    {"sequence", unary<is_sequence>},
    {"string", unary<is_string>},
    {"true", unary<is_true>},
    {"undefined", unary<is_undefined>},
    {"upper", unary<is_upper>},
}};

}  // namespace

test_fn find_test(std::string_view name) {
  for (const test_entry& t : tests) {
    if (t.name == name) return t.fn;
  }
  return nullptr;
}

}  // namespace troupe::engine::chat
