// ClientService and BackoffPolicy on the reactor over the fake kernel's manual clock, with an
// injected jitter: the backoff sequence and its bounds, reconnection after failure and loss, the
// count reset by a connection, and stop in every phase (cancel an attempt, cancel a wait, close
// a connection and complete on its loss); callbacks of cancelled attempts are ignored.
#include "daemonkit/core/app/client_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::Contains;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

Duration secs(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// ---- BackoffPolicy ---------------------------------------------------------------------------

TEST(BackoffPolicy, DefaultsGrowByHalfFromOneSecondUpToAMinute) {
  BackoffPolicy policy;
  std::vector<Duration> delays;
  for (unsigned retry = 1; retry <= 13; ++retry) delays.push_back(policy.delay(retry));
  EXPECT_THAT(delays,
              ElementsAre(secs(1), secs(1.5), secs(2.25), secs(3.375), secs(5.0625), secs(7.59375),
                          secs(11.390625), secs(17.0859375), secs(25.62890625), secs(38.443359375),
                          secs(57.6650390625), secs(60), secs(60)));
}

TEST(BackoffPolicy, JitterAddsUpToOneSecondAndOutOfRangeValuesAreClamped) {
  BackoffPolicy policy;
  double next = 0.5;
  policy.jitter = [&] { return next; };
  EXPECT_EQ(policy.delay(1), secs(1.5));
  next = 7.0;
  EXPECT_LT(policy.delay(1), secs(2));
  EXPECT_GT(policy.delay(1), secs(1.999));
  next = -3.0;
  EXPECT_EQ(policy.delay(1), secs(1));
  next = std::nan("");
  EXPECT_EQ(policy.delay(1), secs(1));
}

TEST(BackoffPolicy, HugeRetryNumbersAndFactorsStayAtTheCap) {
  BackoffPolicy policy;
  EXPECT_EQ(policy.delay(1751), secs(60));  // Twisted's pinned case
  EXPECT_EQ(policy.delay(4'000'000'000u), secs(60));
  policy.factor = 1e300;
  EXPECT_EQ(policy.delay(3), secs(60));
  EXPECT_EQ(policy.delay(0), secs(1)) << "retry 0 is taken as the first";
}

RC_GTEST_PROP(BackoffPolicy, EveryDelayIsWithinItsJitterBounds, (unsigned retry)) {
  const auto u = *rc::gen::inRange(0, 1'000'000);
  BackoffPolicy policy;
  policy.jitter = [u] { return static_cast<double>(u) / 1e6; };
  const unsigned r = retry % 200 + 1;
  const double base = std::min(std::pow(1.5, static_cast<double>(std::min(r - 1, 100u))), 60.0);
  const Duration d = policy.delay(r);
  RC_ASSERT(d >= secs(base) - nanoseconds(2));
  RC_ASSERT(d < secs(base) + seconds(1));
  RC_ASSERT(d <= seconds(61));
}

// ---- ClientService ---------------------------------------------------------------------------

struct Attempt {
  ConnectCallbacks report;
  Duration at{};
  bool cancelled = false;
};

struct Rig {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;
  nanoseconds origin{};
  std::vector<std::shared_ptr<Attempt>> attempts;
  // What each new attempt does inside the connect function (nothing: it stays pending).
  std::function<void(Attempt&)> on_attempt;
  std::vector<double> jitters;  // handed out in turn, then 0
  std::size_t jitter_index = 0;
  int connections = 0;

  Rig() {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
    origin = os.clock().monotonic();
  }
  Duration now() { return os.clock().monotonic() - origin; }

  ConnectFunction connect() {
    return [this](ConnectCallbacks report) {
      auto attempt = std::make_shared<Attempt>();
      attempt->report = std::move(report);
      attempt->at = now();
      attempts.push_back(attempt);
      if (on_attempt) on_attempt(*attempt);
      return [attempt] { attempt->cancelled = true; };
    };
  }
  std::unique_ptr<ClientService> service() {
    ClientServiceOptions options;
    options.backoff.jitter = [this] {
      return jitter_index < jitters.size() ? jitters[jitter_index++] : 0.0;
    };
    options.log = [this](std::string_view line) { log.emplace_back(line); };
    options.on_connected = [this] { ++connections; };
    return std::make_unique<ClientService>(*reactor, "tcp:host=db:port=5432", connect(),
                                           std::move(options), "db");
  }
  // Jumps the clock to the next timed call and runs it.
  void next_timer() {
    const auto wait = reactor->timeout();
    ASSERT_TRUE(wait.has_value()) << "nothing is scheduled";
    os.clock().advance(*wait);
    reactor->run_until_current();
  }
  std::vector<Duration> attempt_times() const {
    std::vector<Duration> out;
    for (const auto& a : attempts) out.push_back(a->at);
    return out;
  }
};

TEST(ClientService, ConnectsOnStart) {
  Rig r;
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  ASSERT_EQ(r.attempts.size(), 1u);
  EXPECT_EQ(client->phase(), ClientService::Phase::kConnecting);
  r.attempts[0]->report.connected();
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(r.connections, 1);
  EXPECT_THAT(r.log, ElementsAre("service 'db': connected to tcp:host=db:port=5432"));
}

TEST(ClientService, RetriesFollowTheBackoffWithTheJitterAdded) {
  Rig r;
  r.jitters = {0.0, 0.5, 0.25, 0.75};
  r.on_attempt = [](Attempt& a) { a.report.failed("connect: Connection refused (ECONNREFUSED)"); };
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  for (int i = 0; i < 4; ++i) r.next_timer();
  // Waits: 1 + 0, 1.5 + 0.5, 2.25 + 0.25, 3.375 + 0.75.
  EXPECT_THAT(r.attempt_times(), ElementsAre(secs(0), secs(1), secs(3), secs(5.5), secs(9.625)));
  EXPECT_EQ(client->failed_attempts(), 5u);
  EXPECT_EQ(client->next_attempt(), TimePoint(r.origin) + secs(9.625) + secs(5.0625));
  EXPECT_THAT(r.log, Contains("service 'db': scheduling retry 1 to connect tcp:host=db:port=5432 "
                              "in 1.000 seconds (connect: Connection refused (ECONNREFUSED))"));
}

TEST(ClientService, WaitsAreCappedAtTheMaximumPlusJitter) {
  Rig r;
  r.on_attempt = [](Attempt& a) { a.report.failed("refused"); };
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  for (int i = 0; i < 20; ++i) r.next_timer();
  const auto times = r.attempt_times();
  ASSERT_GE(times.size(), 21u);
  EXPECT_EQ(times[20] - times[19], secs(60));
}

TEST(ClientService, DefaultJitterStaysUnderOneSecond) {
  Rig r;
  r.on_attempt = [](Attempt& a) { a.report.failed("refused"); };
  ClientService client(*r.reactor, "peer", r.connect());
  ASSERT_THAT(client.start(), IsOk());
  for (int i = 0; i < 30; ++i) r.next_timer();
  const auto times = r.attempt_times();
  BackoffPolicy plain;
  for (std::size_t i = 1; i < times.size(); ++i) {
    const Duration wait = times[i] - times[i - 1];
    EXPECT_GE(wait, plain.delay(static_cast<unsigned>(i)));
    EXPECT_LT(wait, plain.delay(static_cast<unsigned>(i)) + seconds(1));
  }
}

TEST(ClientService, AConnectionResetsTheCountAndALossRetriesFromTheStart) {
  Rig r;
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  r.attempts[0]->report.failed("refused");
  r.next_timer();
  r.attempts[1]->report.failed("refused");
  EXPECT_EQ(client->failed_attempts(), 2u);
  r.next_timer();
  r.attempts[2]->report.connected();
  EXPECT_EQ(client->failed_attempts(), 0u);
  const Duration lost_at = r.now();
  r.attempts[2]->report.lost("connection reset by peer");
  EXPECT_EQ(client->phase(), ClientService::Phase::kWaiting);
  EXPECT_THAT(r.log, Contains(HasSubstr("lost the connection to tcp:host=db:port=5432: "
                                        "connection reset by peer")));
  r.next_timer();
  ASSERT_EQ(r.attempts.size(), 4u);
  EXPECT_EQ(r.attempts[3]->at - lost_at, secs(1));
}

TEST(ClientService, StopWhileConnectingCancelsTheAttemptAndIgnoresItsLateReport) {
  Rig r;
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  Completion stopped = client->stop();
  EXPECT_TRUE(stopped.completed());
  EXPECT_TRUE(r.attempts[0]->cancelled);
  r.attempts[0]->report.connected();
  r.attempts[0]->report.failed("late");
  EXPECT_EQ(r.connections, 0);
  EXPECT_THAT(r.reactor->delayed_calls(), IsEmpty());
  EXPECT_EQ(client->phase(), ClientService::Phase::kIdle);
}

TEST(ClientService, StopWhileWaitingCancelsTheRetry) {
  Rig r;
  r.on_attempt = [](Attempt& a) { a.report.failed("refused"); };
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  EXPECT_EQ(client->phase(), ClientService::Phase::kWaiting);
  EXPECT_TRUE(client->stop().completed());
  EXPECT_THAT(r.reactor->delayed_calls(), IsEmpty());
  EXPECT_EQ(r.attempts.size(), 1u);
}

TEST(ClientService, StopWhileConnectedClosesAndCompletesWhenTheConnectionIsLost) {
  Rig r;
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  r.attempts[0]->report.connected();
  Completion stopped = client->stop();
  EXPECT_TRUE(r.attempts[0]->cancelled) << "closing is the attempt's cancel";
  EXPECT_FALSE(stopped.completed());
  EXPECT_EQ(client->state(), ServiceState::kStopping);
  EXPECT_TRUE(client->stop().same_as(stopped));
  EXPECT_THAT(client->start(), fake::FailsWith(StepKind::kOptions));
  r.attempts[0]->report.lost("closed by us");
  EXPECT_TRUE(stopped.completed());
  EXPECT_EQ(client->state(), ServiceState::kStopped);
  EXPECT_THAT(r.reactor->delayed_calls(), IsEmpty()) << "no reconnection after a stop";
  // And it starts again, with a fresh attempt.
  ASSERT_THAT(client->start(), IsOk());
  EXPECT_EQ(r.attempts.size(), 2u);
}

TEST(ClientService, ReportsOfAnAttemptThatIsNotTheCurrentOneAreIgnored) {
  Rig r;
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  r.attempts[0]->report.failed("refused");
  r.attempts[0]->report.failed("refused again");  // a second report of one attempt
  r.attempts[0]->report.lost("never connected");
  EXPECT_EQ(client->failed_attempts(), 1u);
  EXPECT_EQ(r.reactor->delayed_calls().size(), 1u);
}

TEST(ClientService, AnAttemptThatConnectsInsideTheConnectFunctionCountsAsConnected) {
  Rig r;
  r.on_attempt = [](Attempt& a) { a.report.connected(); };
  auto client = r.service();
  ASSERT_THAT(client->start(), IsOk());
  EXPECT_TRUE(client->connected());
  // The close handle was kept although the report came first.
  Completion stopped = client->stop();
  EXPECT_TRUE(r.attempts[0]->cancelled);
  r.attempts[0]->report.lost("closed");
  EXPECT_TRUE(stopped.completed());
}

TEST(ClientService, ConnectFunctionThatThrowsCountsAsAFailedAttempt) {
  Rig r;
  ClientServiceOptions options;
  options.log = [&](std::string_view line) { r.log.emplace_back(line); };
  int calls = 0;
  ClientService client(
      *r.reactor, "peer",
      [&](ConnectCallbacks) -> std::function<void()> {
        ++calls;
        throw std::runtime_error("no route to the resolver");
      },
      std::move(options), "db");
  ASSERT_THAT(client.start(), IsOk());
  EXPECT_EQ(client.phase(), ClientService::Phase::kWaiting);
  EXPECT_THAT(r.log, Contains(HasSubstr("(no route to the resolver)")));
  r.next_timer();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(client.failed_attempts(), 2u);
}

TEST(ClientService, ConnectionWithoutACloseHandleStopsAtOnce) {
  Rig r;
  ClientService client(*r.reactor, "peer", [](ConnectCallbacks report) {
    report.connected();
    return std::function<void()>();
  });
  ASSERT_THAT(client.start(), IsOk());
  ASSERT_TRUE(client.connected());
  // Nothing to close and nothing that would report the loss: waiting would never end.
  EXPECT_TRUE(client.stop().completed());
  EXPECT_EQ(client.state(), ServiceState::kStopped);
}

TEST(ClientService, DestroyedServiceCancelsItsAttemptAndIgnoresLaterReports) {
  Rig r;
  std::shared_ptr<Attempt> attempt;
  {
    auto client = r.service();
    ASSERT_THAT(client->start(), IsOk());
    attempt = r.attempts[0];
  }
  EXPECT_TRUE(attempt->cancelled);
  attempt->report.failed("late");  // must not reach the destroyed service
  EXPECT_THAT(r.reactor->delayed_calls(), IsEmpty());
}

}  // namespace
}  // namespace daemonkit::core
