// The consumer's own test, linking daemonkit::fake (however the project got daemonkit).
#include "hello_writer.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/mock_syscalls.h"

namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::StrictMock;

TEST(WriteGreeting, FinishesAShortWriteAndRetriesEintr) {
  StrictMock<daemonkit::fake::MockSyscalls> os;
  std::string written;
  int calls = 0;
  EXPECT_CALL(os, write(5, _, _))
      .Times(3)
      .WillRepeatedly(
          Invoke([&](int, const void* buf, std::size_t n) -> daemonkit::sys::Result<std::size_t> {
            if (++calls == 2) return daemonkit::sys::fail(EINTR, "write");
            const std::size_t take = calls == 1 ? 4 : n;
            written.append(static_cast<const char*>(buf), take);
            return take;
          }));
  ASSERT_TRUE(consumer::write_greeting(os, 5, "world"));
  EXPECT_EQ(written, "hello, world\n");
}

TEST(WriteGreeting, ReportsTheErrno) {
  StrictMock<daemonkit::fake::MockSyscalls> os;
  EXPECT_CALL(os, write(5, _, _))
      .WillOnce(::testing::Return(
          daemonkit::sys::Result<std::size_t>(daemonkit::sys::fail(EPIPE, "write"))));
  const auto result = consumer::write_greeting(os, 5, "world");
  ASSERT_FALSE(result);
  EXPECT_EQ(daemonkit::sys::to_string(result.error()), "write: Broken pipe (EPIPE)");
}

}  // namespace
