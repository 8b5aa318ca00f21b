// Values on their own: JSON in (key order, duplicates, numbers), JSON out in json.dumps's exact
// format, Python's float and str repr, and == across types. Expected texts are what CPython prints.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/chat/json_value.hpp"
#include "engine/chat/printing.hpp"
#include "engine/chat/value.hpp"

namespace troupe::engine::chat {
namespace {

value parse(const std::string& json) {
  auto v = from_json(json);
  EXPECT_TRUE(v) << v.message();
  return v ? *v : value{};
}

std::string dumps(const value& v, const json_options& options = {}) {
  auto s = to_json(v, options);
  return s ? *s : "error: " + s.message();
}

std::string float_repr(double d) {
  std::string s;
  append_float(s, d);
  return s;
}

TEST(chat_values, json_keeps_key_order_and_last_duplicate) {
  const value v = parse(R"({"z": 1, "a": {"y": [true, null, "s"], "b": 2.5}, "m": -3, "z": 9})");
  EXPECT_EQ(dumps(v), R"({"z": 9, "a": {"y": [true, null, "s"], "b": 2.5}, "m": -3})");
  EXPECT_EQ(to_str(v), "{'z': 9, 'a': {'y': [True, None, 's'], 'b': 2.5}, 'm': -3}");
}

TEST(chat_values, json_numbers) {
  EXPECT_TRUE(parse("1").is_int());
  EXPECT_TRUE(parse("1.0").is_float());  // json.loads("1.0") is a float: tojson prints 1.0
  EXPECT_EQ(dumps(parse("[1.0, 1e300, -0.0, 18446744073709551615, 1e-7]")),
            "[1.0, 1e+300, -0.0, 1.8446744073709552e+19, 1e-07]");
}

TEST(chat_values, tojson_matches_json_dumps) {
  const value v = parse(R"({"s": "quote \" slash \\ nl \n cr \r tab \t bs \b ff \f ctl \u001f del \u007f é 🙂 \u2028",
                            "e": [], "o": {}, "n": [1, [2, {"k": null}]]})");
  EXPECT_EQ(dumps(v), R"({"s": "quote \" slash \\ nl \n cr \r tab \t bs \b ff \f ctl \u001f del )"
                      "\x7f é 🙂 \u2028\", \"e\": [], \"o\": {}, \"n\": [1, [2, {\"k\": null}]]}");
  json_options indented;
  indented.indent = "  ";
  indented.item_separator = ",";
  EXPECT_EQ(dumps(parse(R"({"a": [1, {"b": []}], "c": "d"})"), indented),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": \"d\"\n}");
  json_options ascii;
  ascii.ensure_ascii = true;
  EXPECT_EQ(dumps(value::string("é\x7f🙂"), ascii), R"("\u00e9\u007f\ud83d\ude42")");
  json_options sorted;
  sorted.sort_keys = true;
  sorted.item_separator = ",";
  sorted.key_separator = ":";
  EXPECT_EQ(dumps(parse(R"({"b": 1, "a": {"d": 2, "c": 3}})"), sorted), R"({"a":{"c":3,"d":2},"b":1})");
  EXPECT_EQ(dumps(value{}), "error: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(dumps(value::dict(make_object(true))), "error: Object of type Namespace is not JSON serializable");
  EXPECT_EQ(dumps(value::number(std::nan(""))), "NaN");
}

TEST(chat_values, floats_print_like_python_repr) {
  EXPECT_EQ(float_repr(0.1), "0.1");
  EXPECT_EQ(float_repr(2.0), "2.0");
  EXPECT_EQ(float_repr(-0.0), "-0.0");
  EXPECT_EQ(float_repr(100.0), "100.0");
  EXPECT_EQ(float_repr(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(float_repr(1e16), "1e+16");
  EXPECT_EQ(float_repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(float_repr(12345678901234567.0), "1.2345678901234568e+16");
  EXPECT_EQ(float_repr(0.0001), "0.0001");
  EXPECT_EQ(float_repr(0.00001), "1e-05");
  EXPECT_EQ(float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(float_repr(1e22), "1e+22");
  EXPECT_EQ(float_repr(5e-324), "5e-324");
  EXPECT_EQ(float_repr(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(float_repr(-2.5e100), "-2.5e+100");
  EXPECT_EQ(float_repr(INFINITY), "inf");
  EXPECT_EQ(float_repr(-INFINITY), "-inf");
}

TEST(chat_values, strings_repr_like_python) {
  const auto repr = [](const std::string& s) {
    std::string out;
    append_string_repr(out, s);
    return out;
  };
  EXPECT_EQ(repr("plain"), "'plain'");
  EXPECT_EQ(repr("it's"), "\"it's\"");
  EXPECT_EQ(repr("both ' and \""), "'both \\' and \"'");
  EXPECT_EQ(repr("a\\b\nc\td\re\x01\x7f"), "'a\\\\b\\nc\\td\\re\\x01\\x7f'");
  EXPECT_EQ(repr("é 日本 🙂"), "'é 日本 🙂'");
  EXPECT_EQ(repr("\xc2\xa0\xe2\x80\x8b\xc2\x85"), "'\\xa0\\u200b\\x85'");
}

TEST(chat_values, python_equality) {
  EXPECT_TRUE(equal(value::integer(1), value::number(1.0)));
  EXPECT_TRUE(equal(value::boolean(true), value::integer(1)));
  EXPECT_FALSE(equal(value::string("1"), value::integer(1)));
  EXPECT_TRUE(equal(parse(R"({"a": [1, {"b": 2}], "c": null})"), parse(R"({"c": null, "a": [1, {"b": 2.0}]})")));
  EXPECT_FALSE(equal(parse("[1, 2]"), parse("[1, 2, 3]")));
  EXPECT_FALSE(equal(value::list({value::integer(1)}), value::list({value::integer(1)}, true)));
  EXPECT_TRUE(equal(value{}, value{}));
  EXPECT_FALSE(equal(value{}, value::none()));
  const value ns = value::dict(make_object(true));
  EXPECT_TRUE(equal(ns, ns));
  EXPECT_FALSE(equal(ns, value::dict(make_object(true))));
}

TEST(chat_values, large_dicts_index_their_keys) {
  object_ptr o = make_object();
  for (int i = 0; i < 1000; ++i) o->set(std::string("k").append(std::to_string(i)), value::integer(i));
  o->set("k7", value::integer(-7));  // replaced in place
  const value v = value::dict(o);
  ASSERT_EQ(v.as_object().size(), 1000u);
  EXPECT_EQ(v.as_object().find("k999")->as_int(), 999);
  EXPECT_EQ(v.as_object().find("k7")->as_int(), -7);
  EXPECT_EQ(v.as_object().items()[7].first, "k7");
  EXPECT_EQ(v.as_object().find("nope"), nullptr);
}

}  // namespace
}  // namespace troupe::engine::chat
