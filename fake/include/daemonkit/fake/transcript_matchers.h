// gmock matchers over a FakeSyscalls transcript, for assertions such as "setgid came before
// setuid" or "the pid file was opened with O_NOFOLLOW":
//   EXPECT_THAT(fake.transcript(), CalledBefore("setgid", "setuid"));
//   EXPECT_THAT(fake.transcript(),
//               HasCallWithArgs("open", ElementsAre("/run/x.pid", HasSubstr("O_NOFOLLOW"), _)));
//   EXPECT_THAT(fake, HasOpenFds(daemon_pid, ElementsAre(0, 1, 2)));
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <gmock/gmock.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::fake {

namespace detail {

inline std::ptrdiff_t first_index_of(const Transcript& t, const std::string& name) {
  auto it = std::find_if(t.begin(), t.end(), [&](const CallRecord& r) { return r.name == name; });
  return it == t.end() ? -1 : it - t.begin();
}

}  // namespace detail

// The transcript holds at least one call of `name`.
MATCHER_P(HasCall, name, std::string(negation ? "has no call of " : "has a call of ") + name) {
  return detail::first_index_of(arg, name) >= 0;
}

// Some call of `name` had arguments (as rendered text) matching `args_matcher`, e.g.
// ElementsAre("65534") or Contains(HasSubstr("O_CLOEXEC")).
MATCHER_P2(HasCallWithArgs, name, args_matcher,
           std::string(negation ? "has no call of " : "has a call of ") + name +
               " whose arguments " +
               ::testing::DescribeMatcher<std::vector<std::string>>(args_matcher)) {
  for (const auto& record : arg) {
    if (record.name == name && ::testing::Matches(args_matcher)(record.args)) return true;
  }
  return false;
}

// The first call of `first` precedes the first call of `second`, and both were made.
MATCHER_P2(CalledBefore, first, second,
           std::string(negation ? "does not call " : "calls ") + first + " before " + second) {
  const auto a = detail::first_index_of(arg, first);
  const auto b = detail::first_index_of(arg, second);
  if (a < 0) *result_listener << "no call of " << first;
  if (b < 0) *result_listener << (a < 0 ? " and " : "") << "no call of " << second;
  return a >= 0 && b >= 0 && a < b;
}

namespace detail {
MATCHER_P(CallsInOrderMatcher, names,
          std::string(negation ? "does not make calls in the order "
                               : "makes calls in the order ") +
              ::testing::PrintToString(names)) {
  std::size_t next = 0;
  for (const auto& record : arg) {
    if (next < names.size() && record.name == names[next]) ++next;
  }
  if (next < names.size()) *result_listener << "no " << names[next] << " after the earlier ones";
  return next == names.size();
}
}  // namespace detail

// The named calls appear in this order (other calls may come between them):
//   EXPECT_THAT(fake.transcript(), CallsInOrder({"setgroups", "setresgid", "setresuid"}));
inline auto CallsInOrder(std::vector<std::string> names) {
  return detail::CallsInOrderMatcher(std::move(names));
}

// Some call of `name` failed with `error` (an errno value).
MATCHER_P2(CallFailedWith, name, error,
           std::string(negation ? "has no call of " : "has a call of ") + name + " failing with " +
               daemonkit::sys::errno_name(error)) {
  for (const auto& record : arg) {
    if (record.name == name && record.finished && record.error == error) return true;
  }
  return false;
}

// Every call of `name` succeeded (vacuously true when there was none).
MATCHER_P(AllSucceeded, name, std::string(negation ? "has a failed " : "has no failed ") + name) {
  for (const auto& record : arg) {
    if (record.name == name && !record.ok()) {
      *result_listener << "failed: " << record.to_string();
      return false;
    }
  }
  return true;
}

// The descriptors open in process `pid` (ascending) match `fds_matcher`; on failure, says what
// each open descriptor refers to, so a leak is easy to place:
//   EXPECT_THAT(fake, HasOpenFds(daemon, ElementsAre(0, 1, 2)));
//   EXPECT_THAT(fake, HasOpenFds(child, IsEmpty()));
MATCHER_P2(HasOpenFds, pid, fds_matcher,
           std::string(negation ? "does not have" : "has") + " open descriptors in pid " +
               std::to_string(pid) + " that " +
               ::testing::DescribeMatcher<std::vector<int>>(fds_matcher)) {
  const std::vector<int> fds = arg.open_fds(pid);
  if (::testing::Matches(fds_matcher)(fds)) return true;
  *result_listener << "open in pid " << pid << ":";
  if (fds.empty()) *result_listener << " none";
  for (int fd : fds) *result_listener << "\n  " << fd << " -> " << arg.describe_fd(pid, fd);
  return false;
}

}  // namespace daemonkit::fake
