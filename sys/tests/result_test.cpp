#include "daemonkit/sys/result.h"

#include <cerrno>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::sys {
namespace {

TEST(ErrorFormat, NamesCallSubjectDescriptionAndErrno) {
  const Error error = Error{ENOENT, "open", {}}.about("/run/x.pid");
  EXPECT_EQ(fmt::format("{}", error), "open(/run/x.pid): No such file or directory (ENOENT)");
}

TEST(ErrorFormat, OmitsParenthesesWithoutSubject) {
  EXPECT_EQ(to_string(Error{EPERM, "setuid", {}}), "setuid: Operation not permitted (EPERM)");
}

TEST(ErrorFormat, NamesCommonErrnos) {
  EXPECT_EQ(errno_name(EACCES), "EACCES");
  EXPECT_EQ(errno_name(EAGAIN), "EAGAIN");
  EXPECT_EQ(errno_name(EINTR), "EINTR");
  EXPECT_EQ(errno_name(ESRCH), "ESRCH");
  EXPECT_EQ(errno_name(EWOULDBLOCK), errno_name(EAGAIN));
}

TEST(ErrorFormat, UnknownErrnoStillPrintsItsNumber) {
  EXPECT_EQ(errno_name(4242), "E?4242");
  EXPECT_EQ(errno_description(4242), "Unknown error 4242");
  EXPECT_EQ(to_string(Error{4242, "read", {}}), "read: Unknown error 4242 (E?4242)");
}

TEST(ErrorFormat, DescribesAnyStepInTheSameShape) {
  EXPECT_EQ(describe_failure("dup2(3, 0)", EBADF), "dup2(3, 0): Bad file descriptor (EBADF)");
  EXPECT_EQ(describe_failure(call_on("chdir", "/srv"), ENOENT),
            "chdir(/srv): No such file or directory (ENOENT)");
  EXPECT_EQ(describe_failure("setsid", 4242), "setsid: Unknown error 4242 (E?4242)");
}

TEST(ErrorFormat, ToStringIsDescribeFailureOfTheCallOnItsSubject) {
  const Error error = Error{EACCES, "unlink", {}}.about("/run/x.pid");
  EXPECT_EQ(to_string(error), describe_failure(call_on("unlink", "/run/x.pid"), EACCES));
}

TEST(ErrorFormat, FormatterHonoursWidth) {
  EXPECT_EQ(fmt::format("[{:>40}]", Error{EBADF, "close", {}}),
            "[      close: Bad file descriptor (EBADF)]");
}

TEST(Result, CarriesValueOrError) {
  Result<int> ok = 7;
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 7);
  Result<int> bad = fail(EBADF, "dup");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EBADF);
  EXPECT_STREQ(bad.error().call, "dup");
  Result<void> done{};
  EXPECT_TRUE(done);
}

TEST(Result, AboutKeepsCodeAndCall) {
  const Error base{EEXIST, "mkdir", {}};
  const Error annotated = base.about("/var/run");
  EXPECT_EQ(annotated.code, EEXIST);
  EXPECT_STREQ(annotated.call, "mkdir");
  EXPECT_EQ(annotated.subject, "/var/run");
  EXPECT_NE(annotated, base);
}

TEST(Result, MonadicChainsConvertBack) {
  Result<int> doubled = Result<int>(21).map([](int v) { return v * 2; });
  EXPECT_EQ(*doubled, 42);
  Result<int> failed =
      Result<int>(fail(EIO, "read")).and_then([](int v) -> Result<int> { return v; });
  EXPECT_EQ(failed.error().code, EIO);
}

TEST(RetryOnEintr, RetriesOnlyEintr) {
  int calls = 0;
  Result<int> result = retry_on_eintr([&]() -> Result<int> {
    ++calls;
    if (calls < 3) return fail(EINTR, "read");
    return calls;
  });
  EXPECT_EQ(*result, 3);
  EXPECT_EQ(calls, 3);
}

TEST(RetryOnEintr, ReturnsOtherErrorsAtOnce) {
  int calls = 0;
  Result<int> result = retry_on_eintr([&]() -> Result<int> {
    ++calls;
    return fail(EAGAIN, "read");
  });
  EXPECT_EQ(result.error().code, EAGAIN);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace daemonkit::sys
