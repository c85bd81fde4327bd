// gmock matchers over results: sys::Result, core::StepResult, core::ReactorResult (and any
// tl::expected whose error has the same shape), so a test says what it expects of a failure
// instead of unpacking it:
//   EXPECT_THAT(os.setuid(0), FailsWith(EPERM));
//   EXPECT_THAT(os.open("/x", O_RDONLY, 0), FailsWith(ENOENT, "open"));
//   EXPECT_THAT(reactor.stop(), FailsWith(ReactorErrc::kNotRunning));
//   EXPECT_THAT(PidFile::acquire(os, "/run/x.pid", {}), FailsWith(StepKind::kPidFile));
//   EXPECT_THAT(acquired, FailsWithMessage(HasSubstr("Another server is running")));
//   ASSERT_THAT(acquired, IsOk());  // on failure, prints the error's message
// The header names no core type: it reads errors by their shape (an `error_number()`, a `cause`
// or an `os`, a `code` or `kind` enum, a `message` or a `to_string`), so linking the fake never
// requires core.
#pragma once

#include <concepts>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <gmock/gmock.h>
#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"

namespace daemonkit::fake {

namespace detail {

// A tl::expected, or a class derived from one (sys::Result, core::StepResult, ...).
template <typename R>
concept ResultLike =
    std::derived_from<R, tl::expected<typename R::value_type, typename R::error_type>>;

template <typename E>
inline constexpr bool kUnsupportedError = false;

template <typename K>
concept Enum = std::is_enum_v<K>;

// The OS error behind `error`, or null when the failure carries no errno.
template <typename E>
const sys::Error* os_error(const E& error) {
  if constexpr (std::is_same_v<E, sys::Error>) {
    return &error;
  } else if constexpr (requires {
                         requires std::is_same_v<decltype(E::cause), std::optional<sys::Error>>;
                       }) {
    return error.cause ? &*error.cause : nullptr;  // core::StepError
  } else if constexpr (requires {
                         requires std::is_same_v<decltype(E::os), sys::Error>;
                         { error.error_number() } -> std::convertible_to<int>;
                       }) {
    return error.error_number() != 0 ? &error.os : nullptr;  // core::ReactorError
  } else {
    static_assert(kUnsupportedError<E>, "this error type carries no sys::Error to match");
    return nullptr;
  }
}

// What a user would read of `error`.
template <typename E>
std::string error_text(const E& error) {
  if constexpr (std::is_same_v<E, sys::Error>) {
    return sys::to_string(error);
  } else if constexpr (requires {
                         { error.message } -> std::convertible_to<std::string>;
                       }) {
    return error.message;  // core::StepError
  } else if constexpr (requires {
                         { to_string(error) } -> std::convertible_to<std::string>;
                       }) {
    return to_string(error);  // core::ReactorError, found where the type lives
  } else {
    static_assert(kUnsupportedError<E>, "this error type has no text to show");
    return {};
  }
}

// The `code` or `kind` of `error` equals `want`, an enumerator of that member's type.
template <typename E, typename K>
bool has_kind(const E& error, K want) {
  if constexpr (requires { requires std::is_same_v<decltype(E::code), K>; }) {
    return error.code == want;  // core::ReactorError's ReactorErrc
  } else if constexpr (requires { requires std::is_same_v<decltype(E::kind), K>; }) {
    return error.kind == want;  // core::StepError's StepKind
  } else {
    static_assert(kUnsupportedError<E>, "this error type has no `code` or `kind` of this enum");
    return false;
  }
}

// "kNotRunning", "pidfile": the enumerator as its type's to_string spells it, else its number.
template <typename K>
std::string kind_text(K kind) {
  if constexpr (requires {
                  { to_string(kind) } -> std::convertible_to<std::string_view>;
                }) {
    return std::string(std::string_view(to_string(kind)));
  } else {
    return std::to_string(static_cast<long long>(kind));
  }
}

// A concept rather than an inline requires-expression: clang rejects a `const void&` parameter
// even behind `!is_void_v<T> &&`, while a concept is simply unsatisfied.
template <typename T>
concept Printable = requires(std::ostream& o, const T& value) {
  o << value;
};

template <typename R>
void print_result(const R& result, std::ostream* out) {
  if (!result) {
    *out << "failed: " << error_text(result.error());
    return;
  }
  *out << "ok";
  using T = typename R::value_type;
  if constexpr (!std::is_void_v<T> && Printable<T>) {
    *out << ": " << ::testing::PrintToString(*result);
  }
}

// "failed with open(/x): Permission denied (EACCES)" after "which ", or "is ok".
template <typename R>
void explain_actual(const R& result, ::testing::MatchResultListener* listener) {
  if (result) {
    *listener << "which is ok";
  } else {
    *listener << "which failed with " << error_text(result.error());
  }
}

class IsOkMatcher {
 public:
  template <ResultLike R>
  bool MatchAndExplain(const R& result, ::testing::MatchResultListener* listener) const {
    if (!result) explain_actual(result, listener);
    return static_cast<bool>(result);
  }
  void DescribeTo(std::ostream* out) const { *out << "is ok"; }
  void DescribeNegationTo(std::ostream* out) const { *out << "fails"; }
};

class FailsWithErrnoMatcher {
 public:
  FailsWithErrnoMatcher(int error_number, std::optional<std::string> call)
      : error_number_(error_number), call_(std::move(call)) {}

  template <ResultLike R>
  bool MatchAndExplain(const R& result, ::testing::MatchResultListener* listener) const {
    if (result) {
      explain_actual(result, listener);
      return false;
    }
    const sys::Error* os = os_error(result.error());
    const bool matches = os != nullptr && os->code == error_number_ &&
                         (!call_ || std::string_view(os->call) == *call_);
    if (!matches) {
      explain_actual(result, listener);
      if (os == nullptr) *listener << ", with no errno behind it";
    }
    return matches;
  }
  void DescribeTo(std::ostream* out) const {
    *out << "fails " << (call_ ? "in " + *call_ + " " : "") << "with "
         << sys::errno_name(error_number_);
  }
  void DescribeNegationTo(std::ostream* out) const {
    *out << "is ok or does not fail " << (call_ ? "in " + *call_ + " " : "") << "with "
         << sys::errno_name(error_number_);
  }

 private:
  int error_number_;
  std::optional<std::string> call_;
};

template <typename K>
class FailsWithKindMatcher {
 public:
  explicit FailsWithKindMatcher(K kind) : kind_(kind) {}

  template <ResultLike R>
  bool MatchAndExplain(const R& result, ::testing::MatchResultListener* listener) const {
    const bool matches = !result && has_kind(result.error(), kind_);
    if (!matches) explain_actual(result, listener);
    return matches;
  }
  void DescribeTo(std::ostream* out) const { *out << "fails with " << kind_text(kind_); }
  void DescribeNegationTo(std::ostream* out) const {
    *out << "is ok or does not fail with " << kind_text(kind_);
  }

 private:
  K kind_;
};

class FailsWithMessageMatcher {
 public:
  explicit FailsWithMessageMatcher(::testing::Matcher<const std::string&> text)
      : text_(std::move(text)) {}

  template <ResultLike R>
  bool MatchAndExplain(const R& result, ::testing::MatchResultListener* listener) const {
    if (result) {
      explain_actual(result, listener);
      return false;
    }
    const std::string text = error_text(result.error());
    ::testing::StringMatchResultListener inner;
    const bool matches = text_.MatchAndExplain(text, &inner);
    *listener << "whose message is " << ::testing::PrintToString(text);
    if (!inner.str().empty()) *listener << ", " << inner.str();
    return matches;
  }
  void DescribeTo(std::ostream* out) const {
    *out << "fails with a message that ";
    text_.DescribeTo(out);
  }
  void DescribeNegationTo(std::ostream* out) const {
    *out << "is ok or fails with a message that ";
    text_.DescribeNegationTo(out);
  }

 private:
  ::testing::Matcher<const std::string&> text_;
};

}  // namespace detail

// The result holds a value. On failure the explanation is the error's message.
inline ::testing::PolymorphicMatcher<detail::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(detail::IsOkMatcher());
}

// The result failed with this errno: sys::Error's code, the cause of a StepError, the OS error
// of a ReactorError (a failure with no errno behind it never matches).
inline ::testing::PolymorphicMatcher<detail::FailsWithErrnoMatcher> FailsWith(int error_number) {
  return ::testing::MakePolymorphicMatcher(
      detail::FailsWithErrnoMatcher(error_number, std::nullopt));
}

// ... and the call that failed is `call` (the libc name, as sys::Error::call holds it).
inline ::testing::PolymorphicMatcher<detail::FailsWithErrnoMatcher> FailsWith(int error_number,
                                                                              std::string call) {
  return ::testing::MakePolymorphicMatcher(
      detail::FailsWithErrnoMatcher(error_number, std::move(call)));
}

// The result failed with this kind: a ReactorErrc (ReactorError::code) or a StepKind
// (StepError::kind). An enum the error does not carry fails to compile.
template <detail::Enum K>
::testing::PolymorphicMatcher<detail::FailsWithKindMatcher<K>> FailsWith(K kind) {
  return ::testing::MakePolymorphicMatcher(detail::FailsWithKindMatcher<K>(kind));
}

// The result failed, and the text a user reads matches: a string for equality, or a matcher
// such as HasSubstr("Another server is running").
template <typename M>
::testing::PolymorphicMatcher<detail::FailsWithMessageMatcher> FailsWithMessage(M text) {
  return ::testing::MakePolymorphicMatcher(
      detail::FailsWithMessageMatcher(::testing::MatcherCast<const std::string&>(std::move(text))));
}

}  // namespace daemonkit::fake

// How gtest shows a result in a failure message ("ok: 3", "failed: setuid: Operation not
// permitted (EPERM)") rather than as raw bytes. gtest looks for PrintTo where the type lives, so
// the printer is declared in sys and named in core, where the other result types live; a
// template over `R<T>` is more specialized than gtest's fallback, and the concept keeps it to
// results.
namespace daemonkit::sys {
template <template <typename> class R, typename T>
requires fake::detail::ResultLike<R<T>>
void PrintTo(const R<T>& result, std::ostream* out) { fake::detail::print_result(result, out); }
}  // namespace daemonkit::sys

// The same function, not a second one: sys::Result<core::PidLiveness> is looked up in both.
namespace daemonkit::core {
using sys::PrintTo;
}  // namespace daemonkit::core
