// InlineCall: what it accepts (checked at compile time), and that it runs, moves and destroys
// the callable it holds exactly as often as it should.
#include "daemonkit/core/reactor/internal/inline_call.h"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <memory>
#include <string>

#include "daemonkit/core/reactor/internal/thread_call_queue.h"

namespace daemonkit::core {
namespace {

using Call = ThreadCallQueue::Call;

// What call_from_thread accepts and refuses; a mistake here fails the build.
struct Pointers {
  void* p[6];
  void operator()() const {}
};
struct TooBig {
  void* p[7];
  void operator()() const {}
};
struct ThrowingMove {
  ThrowingMove() = default;
  ThrowingMove(ThrowingMove&&) noexcept(false) {}
  void operator()() const {}
};
static_assert(Call::kFits<Pointers>);
static_assert(!Call::kFits<TooBig>);
static_assert(!Call::kFits<ThrowingMove>);
static_assert(Call::kFits<std::function<void()>>);    // moved in: nothrow
static_assert(!Call::kFits<std::function<void()>&>);  // copied: may allocate and throw
static_assert(Call::kFits<decltype([s = std::string()] { (void)s; })>);
static_assert(!Call::kFits<int>);

TEST(InlineCall, RunsWhatItHolds) {
  int ran = 0;
  Call call([&ran] { ++ran; });
  ASSERT_TRUE(call);
  call();
  call();
  EXPECT_EQ(ran, 2);
}

TEST(InlineCall, EmptyUntilGivenACallable) {
  Call call;
  EXPECT_FALSE(call);
  call.emplace([] {});
  EXPECT_TRUE(call);
  call.reset();
  EXPECT_FALSE(call);
}

TEST(InlineCall, MoveTransfersTheCallableAndDestroysItOnce) {
  auto token = std::make_shared<int>(5);
  int got = 0;
  {
    Call a([token, &got] { got = *token; });
    EXPECT_EQ(token.use_count(), 2);
    Call b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(token.use_count(), 2);
    Call c;
    c = std::move(b);
    EXPECT_EQ(token.use_count(), 2);
    c();
    EXPECT_EQ(got, 5);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(InlineCall, EmplaceAndResetDestroyThePreviousCallable) {
  auto first = std::make_shared<int>(1);
  auto second = std::make_shared<int>(2);
  Call call([first] {});
  call.emplace([second] {});
  EXPECT_EQ(first.use_count(), 1);
  EXPECT_EQ(second.use_count(), 2);
  call.reset();
  EXPECT_EQ(second.use_count(), 1);
}

TEST(InlineCall, HoldsAStdFunctionMovedIn) {
  int ran = 0;
  std::function<void()> fn = [&ran] { ++ran; };
  Call call(std::move(fn));
  call();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace daemonkit::core
