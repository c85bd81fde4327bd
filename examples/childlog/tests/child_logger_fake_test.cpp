// The childlog example's protocol on the fake kernel: a fake program's stdout and stderr come
// out as log lines, a last line without its newline at its EOF, then how the program ended.
#include "child_logger.h"

#include <fcntl.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_programs.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace {

using daemonkit::core::Process;
using daemonkit::core::Reactor;
using daemonkit::core::SpawnOptions;
using testing::ElementsAre;

TEST(ChildLogger, StreamsEachLineOfTheChildThenItsEnd) {
  daemonkit::fake::FakeSyscalls os;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(os.open("/dev/null", O_RDWR, 0));
  os.install_program(
      "/bin/talk", daemonkit::fake::programs::write_then_exit("one\ntwo\npartial", "warning\n", 4));
  daemonkit::core::ReactorOptions reactor_options;
  reactor_options.install_signal_handlers = false;
  auto reactor = Reactor::create(os, std::move(reactor_options));
  ASSERT_TRUE(reactor);
  std::vector<std::string> lines;
  bool ended = false;
  ChildLogger logger([&](std::string_view line) { lines.emplace_back(line); },
                     [&] { ended = true; });
  SpawnOptions options;
  options.executable = "/bin/talk";
  options.argv = {"talk"};
  auto child = Process::spawn(**reactor, os, logger, std::move(options));
  ASSERT_TRUE(child);
  for (int i = 0; i < 100 && !ended; ++i) {
    ASSERT_TRUE((*reactor)->iterate(std::chrono::milliseconds(0)));
    (*reactor)->run_until_current();
  }
  ASSERT_TRUE(ended);
  EXPECT_THAT(lines, ElementsAre("out: one", "out: two", "err: warning", "out: partial",
                                 "child ended: exit status 4"));
}

}  // namespace
