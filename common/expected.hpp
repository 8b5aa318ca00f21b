// troupe::expected<T>: a value or an error message, returned across every boundary that can fail.
// std::expected is C++23 and clang 14 (used for the fuzz targets) lacks it, so we keep this small one.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace troupe {

// An error that names what was wrong (file, tensor, key, value) in one human-readable line.
struct error {
  std::string message;
};

// Builds an error; call sites read `return fail("...")`.
[[nodiscard]] inline error fail(std::string message) { return error{std::move(message)}; }

template <class T>
class [[nodiscard]] expected {
 public:
  expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  expected(error e) : v_(std::in_place_index<1>, std::move(e)) {}

  [[nodiscard]] bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const error& err() const { assert(!has_value()); return std::get<1>(v_); }
  [[nodiscard]] const std::string& message() const { return err().message; }

 private:
  std::variant<T, error> v_;
};

// For operations that return nothing on success.
template <>
class [[nodiscard]] expected<void> {
 public:
  expected() = default;
  expected(error e) : err_(std::move(e)), ok_(false) {}
  [[nodiscard]] bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  [[nodiscard]] const error& err() const { assert(!ok_); return err_; }
  [[nodiscard]] const std::string& message() const { return err().message; }

 private:
  error err_;
  bool ok_ = true;
};

}  // namespace troupe
