// Properties of the fake kernel checked against simple models over random operation sequences:
// the descriptor table allocates like Linux, and a pipe delivers exactly the bytes written.
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>

#include <map>
#include <string>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake {
namespace {

constexpr int kLimit = 12;  // RLIMIT_NOFILE for the property, so EMFILE is reached often

// The model: which descriptors are open and whether each has FD_CLOEXEC.
struct FdModel {
  std::map<int, bool> open;
  [[nodiscard]] int lowest_free(int from) const {
    int fd = from;
    while (open.count(fd) != 0) ++fd;
    return fd;
  }
  // What allocating from `from` gives: the descriptor, or -1 for EMFILE.
  [[nodiscard]] int allocate(int from) const {
    const int fd = lowest_free(from);
    return fd < kLimit ? fd : -1;
  }
};

RC_GTEST_PROP(FakeFdProperties, TheTableMatchesAModelOfLinuxAllocation, ()) {
  FakeSyscalls os;
  RC_ASSERT(os.setrlimit(RLIMIT_NOFILE, {kLimit, kLimit}).has_value());
  FdModel model;
  const auto steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    const int kind = *rc::gen::inRange(0, 6);
    const int a = *rc::gen::inRange(-1, kLimit + 2);
    const int b = *rc::gen::inRange(-1, kLimit + 2);
    switch (kind) {
      case 0: {  // open
        const bool cloexec = *rc::gen::arbitrary<bool>();
        auto fd = os.open("/dev/null", O_RDONLY | (cloexec ? O_CLOEXEC : 0), 0);
        const int want = model.allocate(0);
        if (want < 0) {
          RC_ASSERT(!fd && fd.error().code == EMFILE);
        } else {
          RC_ASSERT(fd.has_value() && *fd == want);
          model.open[want] = cloexec;
        }
        break;
      }
      case 1: {  // dup
        auto fd = os.dup(a);
        if (model.open.count(a) == 0) {
          RC_ASSERT(!fd && fd.error().code == EBADF);
        } else if (model.allocate(0) < 0) {
          RC_ASSERT(!fd && fd.error().code == EMFILE);
        } else {
          RC_ASSERT(fd.has_value() && *fd == model.allocate(0));
          model.open[*fd] = false;
        }
        break;
      }
      case 2: {  // dup2
        auto fd = os.dup2(a, b);
        if (b < 0 || b >= kLimit || model.open.count(a) == 0) {
          RC_ASSERT(!fd && fd.error().code == EBADF);
        } else {
          RC_ASSERT(fd.has_value() && *fd == b);
          if (a != b) model.open[b] = false;
        }
        break;
      }
      case 3: {  // close
        auto result = os.close(a);
        RC_ASSERT(result.has_value() == (model.open.erase(a) == 1));
        break;
      }
      case 4: {  // close_range, possibly only marking CLOEXEC
        const bool mark = *rc::gen::arbitrary<bool>();
        const unsigned first = static_cast<unsigned>(std::max(a, 0));
        const unsigned last = static_cast<unsigned>(std::max(b, 0));
        auto result = os.close_range(first, last, mark ? CLOSE_RANGE_CLOEXEC : 0);
        RC_ASSERT(result.has_value() == (first <= last));
        if (first > last) break;
        for (auto it = model.open.begin(); it != model.open.end();) {
          const auto fd = static_cast<unsigned>(it->first);
          if (fd < first || fd > last) {
            ++it;
          } else if (mark) {
            it->second = true;
            ++it;
          } else {
            it = model.open.erase(it);
          }
        }
        break;
      }
      case 5: {  // F_DUPFD_CLOEXEC from a minimum
        auto fd = os.fcntl(a, F_DUPFD_CLOEXEC, b);
        if (model.open.count(a) == 0) {
          RC_ASSERT(!fd && fd.error().code == EBADF);
        } else if (b < 0 || b >= kLimit) {
          RC_ASSERT(!fd && fd.error().code == EINVAL);
        } else if (model.allocate(b) < 0) {
          RC_ASSERT(!fd && fd.error().code == EMFILE);
        } else {
          RC_ASSERT(fd.has_value() && *fd == model.allocate(b));
          model.open[*fd] = true;
        }
        break;
      }
      default:
        break;
    }
    std::vector<int> expected;
    for (const auto& [fd, cloexec] : model.open) {
      expected.push_back(fd);
      RC_ASSERT(*os.fcntl(fd, F_GETFD, 0) == (cloexec ? FD_CLOEXEC : 0));
    }
    RC_ASSERT(os.open_fds(os.getpid()) == expected);
  }
}

RC_GTEST_PROP(FakePipeProperties, DeliversExactlyTheBytesWrittenInOrder, ()) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  std::string written;
  std::string read;
  const auto steps = *rc::gen::inRange(1, 80);
  for (int step = 0; step < steps; ++step) {
    const auto size = static_cast<std::size_t>(*rc::gen::inRange(1, 20000));
    if (*rc::gen::arbitrary<bool>()) {
      std::string data(size, '\0');
      for (std::size_t i = 0; i < size; ++i) {
        data[i] = static_cast<char>('a' + (written.size() + i) % 26);
      }
      auto n = os.write(fds.write_end, data.data(), data.size());
      if (n) {
        RC_ASSERT(*n > 0 && *n <= size);
        RC_ASSERT(size > PIPE_BUF || *n == size);  // PIPE_BUF writes are all or nothing
        written.append(data, 0, *n);
      } else {
        RC_ASSERT(n.error().code == EAGAIN);
      }
    } else {
      std::string buf(size, '\0');
      auto n = os.read(fds.read_end, buf.data(), buf.size());
      if (n) {
        read.append(buf, 0, *n);
      } else {
        RC_ASSERT(n.error().code == EAGAIN);
        RC_ASSERT(read.size() == written.size());  // EAGAIN only when empty
      }
    }
    RC_ASSERT(written.size() - read.size() <= 16 * 4096);
  }
  RC_ASSERT(os.close(fds.write_end).has_value());
  std::string buf(4096, '\0');
  for (;;) {
    auto n = os.read(fds.read_end, buf.data(), buf.size());
    RC_ASSERT(n.has_value());
    if (*n == 0) break;
    read.append(buf, 0, *n);
  }
  RC_ASSERT(read == written);
}

}  // namespace
}  // namespace daemonkit::fake
