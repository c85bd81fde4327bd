// Differential unit tests for what random sequences reach too rarely: pipe semantics (EOF,
// EPIPE with SIGPIPE ignored, O_NONBLOCK, PIPE_BUF atomicity, capacity counted in pages) and
// listing /proc/self/fd with getdents64. Each scenario runs on FakeSyscalls and on the real
// kernel; the traces must be equal, and the steps that carry the point are pinned to the
// values Linux documents, so agreeing on a wrong answer fails too.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/result.h"
#include "differential_world.h"
#include "operation_gen.h"

namespace daemonkit::fake::differential {
namespace {

using ::testing::StartsWith;

// Descriptors by number: every world starts with 0, 1 and 2 only, so the first pipe is
// [3, 4], the next descriptor 5, and so on.
FdRef fd(int n) { return FdRef{false, n}; }

// Runs `ops` in both worlds; fails the test with both traces unless they agree, and returns
// the results.
std::vector<std::string> agreed_results(const std::vector<Op>& ops) {
  const Comparison comparison = run_both(
      [&ops](sys::Syscalls& os, const WorldContext& world) { return run_ops(os, world, ops); },
      Privilege::kInvoker);
  std::vector<std::string> results;
  for (const auto& step : comparison.fake) results.push_back(step.result);
  if (!comparison.same()) {
    ADD_FAILURE() << comparison.report();
    return std::vector<std::string>(ops.size(), "(disagreement)");
  }
  return results;
}

TEST(DifferentialPipes, ReadSeesEofOnlyOnceTheLastWriterCloses) {
  const auto r = agreed_results({
      Op{Pipe2{0}},         // 0: [3, 4]
      Op{Dup{fd(4)}},       // 1: 5, the same write description
      Op{Write{fd(4), 5}},  // 2
      Op{Close{fd(4)}},     // 3
      Op{Read{fd(3), 64}},  // 4: the 5 bytes
      Op{Read{fd(3), 1}},   // 5: empty, writer 5 still open: sleeps
      Op{Close{fd(5)}},     // 6
      Op{Read{fd(3), 1}},   // 7: EOF
      Op{Read{fd(3), 1}},   // 8: EOF again
  });
  EXPECT_EQ(r[0], "[3, 4]");
  EXPECT_EQ(r[1], "5");
  EXPECT_THAT(r[4], StartsWith("n=5 "));
  EXPECT_EQ(r[5], "blocks");
  EXPECT_EQ(r[7], "n=0 \"\"");
  EXPECT_EQ(r[8], "n=0 \"\"");
}

TEST(DifferentialPipes, WriteWithoutReadersFailsWithEpipeWhenSigpipeIsIgnored) {
  const auto r = agreed_results({
      Op{Pipe2{0}},                  // 0: [3, 4]
      Op{Dup{fd(3)}},                // 1: 5, the read end again
      Op{Close{fd(3)}},              // 2
      Op{Write{fd(4), 1}},           // 3: a reader remains
      Op{Close{fd(5)}},              // 4: the last reader
      Op{Write{fd(4), 1}},           // 5: EPIPE, and the process lives on
      Op{Write{fd(4), 0}},           // 6: an empty write succeeds before anything is checked
      Op{Fcntl{fd(4), F_GETFD, 0}},  // 7: still here
  });
  EXPECT_EQ(r[3], "n=1");
  EXPECT_EQ(r[5], "EPIPE");
  EXPECT_EQ(r[6], "n=0");
  EXPECT_EQ(r[7], "0");
}

TEST(DifferentialPipes, NonblockingEndsFailWithEagainInsteadOfSleeping) {
  const auto r = agreed_results({
      Op{Pipe2{O_NONBLOCK}},                  // 0: [3, 4]
      Op{Read{fd(3), 1}},                     // 1: empty
      Op{Write{fd(4), 70000}},                // 2: fills the pipe, returns short
      Op{Write{fd(4), 1}},                    // 3: full
      Op{Pipe2{0}},                           // 4: [5, 6], blocking
      Op{Fcntl{fd(5), F_SETFL, O_NONBLOCK}},  // 5: made non-blocking afterwards
      Op{Read{fd(5), 1}},                     // 6
      Op{Fcntl{fd(5), F_GETFL, 0}},           // 7
      Op{Fcntl{fd(5), F_SETFL, 0}},           // 8
      Op{Read{fd(5), 1}},                     // 9: blocking again
  });
  EXPECT_EQ(r[1], "EAGAIN");
  EXPECT_EQ(r[2], "n=65536");
  EXPECT_EQ(r[3], "EAGAIN");
  EXPECT_EQ(r[6], "EAGAIN");
  EXPECT_EQ(r[7], fmt::format("0{:o}", O_RDONLY | O_NONBLOCK));
  EXPECT_EQ(r[9], "blocks");
}

// A write of at most PIPE_BUF bytes goes in whole or not at all, even when some of it would
// fit; a larger one may be split.
TEST(DifferentialPipes, WritesOfAtMostPipeBufAreAtomic) {
  static_assert(PIPE_BUF == 4096);
  const auto r = agreed_results({
      Op{Pipe2{O_NONBLOCK}},    // 0
      Op{Write{fd(4), 64440}},  // 1: 15 full pages and 3000 bytes: 1096 bytes of room left
      Op{Write{fd(4), 2000}},   // 2: would fit only in part: refused whole
      Op{Write{fd(4), 1096}},   // 3: fits exactly
      Op{Read{fd(3), 4096}},    // 4: frees the first page
      Op{Write{fd(4), 4097}},   // 5: more than PIPE_BUF: split, what fits is written
      Op{Pipe2{0}},             // 6: [5, 6], blocking
      Op{Write{fd(6), 65436}},  // 7: 1000 bytes of room...
      Op{Write{fd(6), 4096}},   // 8: ...a blocking PIPE_BUF write sleeps rather than split
  });
  EXPECT_EQ(r[1], "n=64440");
  EXPECT_EQ(r[2], "EAGAIN");
  EXPECT_EQ(r[3], "n=1096");
  EXPECT_THAT(r[4], StartsWith("n=4096 "));
  EXPECT_EQ(r[5], "n=4096");
  EXPECT_EQ(r[7], "n=65436");
  EXPECT_EQ(r[8], "blocks");
}

// Linux keeps a pipe's bytes in 16 pages and merges a write into the last page only when the
// write's unaligned part fits there: after a 5-byte write, a 64 KiB write finds 15 pages.
TEST(DifferentialPipes, CapacityIsCountedInPages) {
  const auto r = agreed_results({
      Op{Pipe2{O_NONBLOCK}},    // 0
      Op{Write{fd(4), 5}},      // 1: the first page, 4091 bytes of it unused
      Op{Write{fd(4), 65536}},  // 2: page-aligned: 15 more pages
      Op{Write{fd(4), 1}},      // 3: the last page is full, no page free
      Op{Read{fd(3), 5}},       // 4: the first page empties and is freed
      Op{Write{fd(4), 100}},    // 5: a page again
      Op{Write{fd(4), 3996}},   // 6: merges into that page, filling it
      Op{Write{fd(4), 1}},      // 7: full
      Op{Read{fd(3), 70000}},   // 8: everything
  });
  EXPECT_EQ(r[1], "n=5");
  EXPECT_EQ(r[2], "n=61440");
  EXPECT_EQ(r[3], "EAGAIN");
  EXPECT_EQ(r[5], "n=100");
  EXPECT_EQ(r[6], "n=3996");
  EXPECT_EQ(r[7], "EAGAIN");
  EXPECT_THAT(r[8], StartsWith("n=65536 "));
}

// ---- /proc/self/fd -----------------------------------------------------------------------

// Lists /proc/self/fd with getdents64 in `buffer`-byte reads, closing each descriptor in
// `close_seen` as soon as it is listed (as a daemon closing inherited descriptors does).
std::vector<Step> list_proc_self_fd(sys::Syscalls& os, std::size_t buffer,
                                    const std::vector<int>& close_seen) {
  std::vector<Step> steps;
  auto dir = os.open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  steps.push_back(
      {"open(/proc/self/fd)", dir ? std::to_string(*dir) : sys::errno_name(dir.error().code)});
  if (!dir) return steps;
  alignas(8) char buf[1024];
  for (int call = 0; call < 64; ++call) {
    auto n = os.getdents64(*dir, buf, buffer);
    if (!n) {
      steps.push_back({"getdents64", sys::errno_name(n.error().code)});
      break;
    }
    std::vector<std::string> names;
    for (std::size_t at = 0; at < *n;) {
      std::uint16_t reclen = 0;
      std::memcpy(&reclen, buf + at + 16, sizeof reclen);
      const auto type = static_cast<unsigned char>(buf[at + 18]);
      const std::string name(buf + at + 19);
      names.push_back(name + (type == DT_LNK ? "" : type == DT_DIR ? "/" : "?"));
      if (name != "." && name != "..") {
        const int seen = std::stoi(name);
        if (std::find(close_seen.begin(), close_seen.end(), seen) != close_seen.end()) {
          static_cast<void>(os.close(seen));
        }
      }
      at += reclen;
    }
    steps.push_back(
        {fmt::format("getdents64({})", buffer), fmt::format("[{}]", fmt::join(names, " "))});
    if (*n == 0) break;
  }
  static_cast<void>(os.close(*dir));
  return steps;
}

std::vector<Op> open_a_few() {
  return {
      Op{Pipe2{0}},                         // 3, 4
      Op{Open{0, O_RDWR | O_CREAT, 0644}},  // 5: a
      Op{Dup2{fd(5), fd(9)}},               // 9
      Op{Dup3{fd(3), fd(12), O_CLOEXEC}},   // 12
      Op{Close{fd(4)}},                     // 4 is free again
  };
}

TEST(DifferentialProcSelfFd, ListsTheSameDescriptorsInOrder) {
  const Comparison comparison = run_both(
      [](sys::Syscalls& os, const WorldContext& world) {
        std::vector<Step> steps = run_ops(os, world, open_a_few());
        for (auto& step : list_proc_self_fd(os, 1024, {})) steps.push_back(step);
        return steps;
      },
      Privilege::kInvoker);
  ASSERT_TRUE(comparison.same()) << comparison.report();
  // The listing descriptor itself is the lowest free one: 4.
  EXPECT_EQ(comparison.fake.at(5).result, "4");
  EXPECT_EQ(comparison.fake.at(6).result, "[./ ../ 0 1 2 3 4 5 9 12]");
  EXPECT_EQ(comparison.fake.at(7).result, "[]");
}

TEST(DifferentialProcSelfFd, SmallBuffersAndClosingWhileListingNeitherRepeatNorSkip) {
  const Comparison comparison = run_both(
      [](sys::Syscalls& os, const WorldContext& world) {
        std::vector<Step> steps = run_ops(os, world, open_a_few());
        // Room for about two records per call; every listed descriptor but the listing's own
        // and 0-2 is closed as soon as it is seen.
        for (auto& step : list_proc_self_fd(os, 56, {3, 5, 9, 12})) steps.push_back(step);
        steps.push_back({"after", ""});
        for (auto& step : list_proc_self_fd(os, 1024, {})) steps.push_back(step);
        return steps;
      },
      Privilege::kInvoker);
  ASSERT_TRUE(comparison.same()) << comparison.report();
  std::string listed;
  for (const auto& step : comparison.fake) {
    if (step.call == "after") break;
    if (step.call.starts_with("getdents64")) listed += step.result;
  }
  EXPECT_EQ(listed, "[./ ../][0 1][2 3][4 5][9 12][]");
  EXPECT_EQ(comparison.fake.back().result, "[]");
  EXPECT_EQ(comparison.fake.at(comparison.fake.size() - 2).result, "[./ ../ 0 1 2 3]");
}

TEST(DifferentialProcSelfFd, ABufferTooSmallForOneRecordIsEinval) {
  const Comparison comparison =
      run_both([](sys::Syscalls& os, const WorldContext&) { return list_proc_self_fd(os, 16, {}); },
               Privilege::kInvoker);
  ASSERT_TRUE(comparison.same()) << comparison.report();
  EXPECT_EQ(comparison.fake.at(1).result, "EINVAL");
}

// ---- Named pipes ------------------------------------------------------------------------------

// fifo_open's rules that never sleep: O_WRONLY|O_NONBLOCK without a reader is ENXIO, a
// non-blocking reader opens alone, O_RDWR opens alone and counts as a reader, and the pipe's
// bytes and flags are the same as an anonymous pipe's. (The openings that sleep are left to
// the fake's own tests: the real world could only time them out.)
TEST(DifferentialFifo, OpenRulesFlagsAndBytesAgree) {
  const Comparison comparison = run_both(
      [](sys::Syscalls& os, const WorldContext& world) {
        const std::string path = world.top + "/f";
        std::vector<Step> steps;
        // Making the FIFO is the world's set-up, not a call under test: Syscalls has no mkfifo.
        if (auto* fake = dynamic_cast<FakeSyscalls*>(&os)) {
          fake->make_fifo(path, 0640);
        } else if (mkfifo(path.c_str(), 0640) != 0) {
          steps.push_back({"mkfifo", sys::errno_name(errno)});
        }
        const auto text = [](const sys::Result<int>& r) {
          return r ? std::to_string(*r) : sys::errno_name(r.error().code);
        };
        const auto open = [&](const char* call, int flags) {
          const auto fd = os.open(path.c_str(), flags, 0);
          steps.push_back({call, text(fd)});
          return fd ? *fd : -1;
        };
        const auto getfl = [&](const char* call, int fd) {
          steps.push_back({call, text(os.fcntl(fd, F_GETFL, 0))});
        };
        const auto st = os.stat(path.c_str());
        steps.push_back({"stat", st ? fmt::format("fifo={} mode={:o}", S_ISFIFO(st->st_mode),
                                                  st->st_mode & 07777)
                                    : sys::errno_name(st.error().code)});
        open("open(O_WRONLY|O_NONBLOCK) without a reader", O_WRONLY | O_NONBLOCK);
        const int reader = open("open(O_RDONLY|O_NONBLOCK)", O_RDONLY | O_NONBLOCK);
        const int writer = open("open(O_WRONLY|O_NONBLOCK) with a reader", O_WRONLY | O_NONBLOCK);
        getfl("F_GETFL reader", reader);
        getfl("F_GETFL writer", writer);
        steps.push_back({"write", os.write(writer, "fifo", 4) ? "4" : "failed"});
        char buffer[8];
        auto n = os.read(reader, buffer, sizeof buffer);
        steps.push_back({"read", n ? std::string(buffer, *n) : sys::errno_name(n.error().code)});
        (void)os.close(writer);
        n = os.read(reader, buffer, sizeof buffer);
        steps.push_back({"read after the writer closed", n ? fmt::format("n={}", *n) : "error"});
        (void)os.close(reader);
        open("open(O_WRONLY|O_NONBLOCK) after every end closed", O_WRONLY | O_NONBLOCK);
        const int both = open("open(O_RDWR)", O_RDWR);
        getfl("F_GETFL both", both);
        const int late = open("open(O_WRONLY|O_NONBLOCK) beside O_RDWR", O_WRONLY | O_NONBLOCK);
        (void)os.close(late);
        (void)os.close(both);
        return steps;
      },
      Privilege::kInvoker);
  ASSERT_TRUE(comparison.same()) << comparison.report();
  const auto& r = comparison.fake;
  ASSERT_EQ(r.size(), 13U);
  EXPECT_EQ(r[0].result, "fifo=true mode=640");
  EXPECT_EQ(r[1].result, "ENXIO");
  constexpr int kLargefile = 0100000;  // Linux's O_LARGEFILE, which it reports on 64-bit
  EXPECT_EQ(r[4].result, std::to_string(O_RDONLY | O_NONBLOCK | kLargefile));
  EXPECT_EQ(r[5].result, std::to_string(O_WRONLY | O_NONBLOCK | kLargefile));
  EXPECT_EQ(r[6].result, "4");
  EXPECT_EQ(r[7].result, "fifo");
  EXPECT_EQ(r[8].result, "n=0");
  EXPECT_EQ(r[9].result, "ENXIO");
  EXPECT_EQ(r[11].result, std::to_string(O_RDWR | kLargefile));
  EXPECT_NE(r[12].result, "ENXIO");
}

}  // namespace
}  // namespace daemonkit::fake::differential
