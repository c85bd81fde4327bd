// Result<T> and Error: how every OS call in daemonkit reports failure.
// An Error keeps the raw errno and the name of the call that set it, never a coarse code,
// so the message a user finally reads can say exactly which call failed and why.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <tl/expected.hpp>

namespace daemonkit::sys {

// A failed call. `call` always points at a string literal (the libc name, e.g. "open"), so
// building an Error never allocates and is safe in a child between fork and exec. `subject`
// is an optional argument worth showing (usually a path); it is empty unless a caller above
// the seam adds it with `Error::about`, outside any async-signal-safe region.
struct Error {
  int code = 0;
  const char* call = "";
  std::string subject;

  // The same error, annotated with what the call was about: open(/run/x.pid).
  [[nodiscard]] Error about(std::string_view what) const {
    return Error{code, call, std::string(what)};
  }

  friend bool operator==(const Error& a, const Error& b) {
    return a.code == b.code && std::string_view(a.call) == std::string_view(b.call) &&
           a.subject == b.subject;
  }
};

// "ENOENT" for ENOENT; "E?" followed by the number for an errno this libc has no name for.
[[nodiscard]] std::string errno_name(int code);

// "No such file or directory"; independent of the locale and thread-safe.
[[nodiscard]] std::string errno_description(int code);

// The whole error as users read it: "open(/run/x.pid): No such file or directory (ENOENT)".
[[nodiscard]] std::string to_string(const Error& error);

// A value or an Error. Must be used: dropping a Result hides a failed OS call.
template <typename T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using Base = tl::expected<T, Error>;
  using Base::Base;
  Result(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose (and_then, map)
};

// The failure branch of any Result: `return fail(errno, "open");`.
[[nodiscard]] inline tl::unexpected<Error> fail(int code, const char* call) {
  return tl::unexpected<Error>(Error{code, call, {}});
}

[[nodiscard]] inline tl::unexpected<Error> fail(Error error) {
  return tl::unexpected<Error>(std::move(error));
}

}  // namespace daemonkit::sys

// Result<T> is an expected for tl's monadic operations, so a lambda given to and_then may return
// a Result. The trait is tl's customisation point for exactly this question.
template <typename T>
struct tl::detail::is_expected_impl<daemonkit::sys::Result<T>> : std::true_type {};

template <>
struct fmt::formatter<daemonkit::sys::Error> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const daemonkit::sys::Error& error, FormatContext& ctx) const {
    const std::string text = daemonkit::sys::to_string(error);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
