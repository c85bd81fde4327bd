// SystemEventTriggers: Twisted's three-phase events (twisted-spec §3.5), without a reactor.
#include "daemonkit/core/reactor/system_event_triggers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using testing::ElementsAre;

struct Fixture {
  std::vector<std::string> lines;
  std::vector<std::string> ran;
  SystemEventTriggers triggers{[this](std::string_view l) { lines.emplace_back(l); }};
  std::function<void()> note(std::string what) {
    return [this, what] { ran.push_back(what); };
  }
};

TEST(SystemEventTriggers, PhasesRunBeforeDuringAfterEachFifo) {
  Fixture f;
  f.triggers.add(Phase::kAfter, "shutdown", f.note("after1"));
  f.triggers.add(Phase::kDuring, "shutdown", f.note("during1"));
  f.triggers.add(Phase::kBefore, "shutdown", f.note("before1"));
  f.triggers.add(Phase::kDuring, "shutdown", f.note("during2"));
  f.triggers.add(Phase::kBefore, "shutdown", f.note("before2"));
  f.triggers.add(Phase::kAfter, "shutdown", f.note("after2"));
  EXPECT_TRUE(f.triggers.fire("shutdown"));
  EXPECT_THAT(f.ran, ElementsAre("before1", "before2", "during1", "during2", "after1", "after2"));
  EXPECT_FALSE(f.triggers.firing("shutdown"));
}

TEST(SystemEventTriggers, TriggersRunOnceEach) {
  Fixture f;
  f.triggers.add(Phase::kDuring, "startup", f.note("d"));
  f.triggers.fire("startup");
  f.triggers.fire("startup");
  EXPECT_THAT(f.ran, ElementsAre("d"));
}

TEST(SystemEventTriggers, EventsAreIndependent) {
  Fixture f;
  f.triggers.add(Phase::kDuring, "startup", f.note("start"));
  f.triggers.add(Phase::kDuring, "shutdown", f.note("stop"));
  f.triggers.fire("shutdown");
  EXPECT_THAT(f.ran, ElementsAre("stop"));
}

TEST(SystemEventTriggers, FailingTriggerIsLoggedAndOthersRun) {
  Fixture f;
  f.triggers.add(Phase::kBefore, "shutdown", [] { throw std::runtime_error("bad"); });
  f.triggers.add(Phase::kBefore, "shutdown", f.note("b"));
  f.triggers.add(Phase::kDuring, "shutdown", [] { throw std::runtime_error("worse"); });
  f.triggers.add(Phase::kAfter, "shutdown", f.note("a"));
  f.triggers.fire("shutdown");
  EXPECT_THAT(f.ran, ElementsAre("b", "a"));
  EXPECT_THAT(f.lines, ElementsAre("While calling system event trigger handler: bad",
                                   "While calling system event trigger handler: worse"));
}

TEST(SystemEventTriggers, HoldDelaysDuringPhaseUntilReleased) {
  Fixture f;
  std::optional<EventHold> kept;
  f.triggers.add_holding("shutdown", [&](EventHold hold) {
    f.ran.push_back("hold");
    kept.emplace(std::move(hold));
  });
  f.triggers.add(Phase::kBefore, "shutdown", f.note("before"));
  f.triggers.add(Phase::kDuring, "shutdown", f.note("during"));
  f.triggers.add(Phase::kAfter, "shutdown", f.note("after"));
  f.triggers.fire("shutdown");
  EXPECT_THAT(f.ran, ElementsAre("hold", "before"));
  EXPECT_TRUE(f.triggers.firing("shutdown"));
  EXPECT_FALSE(f.triggers.fire("shutdown"));  // already firing: nothing happens
  kept->release();
  EXPECT_THAT(f.ran, ElementsAre("hold", "before", "during", "after"));
  EXPECT_FALSE(f.triggers.firing("shutdown"));
}

TEST(SystemEventTriggers, AllHoldsMustBeReleased) {
  Fixture f;
  std::vector<EventHold> holds;
  for (int i = 0; i < 2; ++i) {
    f.triggers.add_holding("startup", [&](EventHold h) { holds.push_back(std::move(h)); });
  }
  f.triggers.add(Phase::kDuring, "startup", f.note("during"));
  f.triggers.fire("startup");
  ASSERT_EQ(holds.size(), 2u);
  holds[1].release();
  EXPECT_TRUE(f.ran.empty());
  holds.clear();  // destroying a hold releases it
  EXPECT_THAT(f.ran, ElementsAre("during"));
}

TEST(SystemEventTriggers, HoldReleasedAtOnceDoesNotWait) {
  Fixture f;
  f.triggers.add_holding("startup", [](EventHold) {});
  f.triggers.add(Phase::kDuring, "startup", f.note("during"));
  f.triggers.fire("startup");
  EXPECT_THAT(f.ran, ElementsAre("during"));
}

TEST(SystemEventTriggers, BeforeTriggerMayRemoveADuringTrigger) {
  Fixture f;
  TriggerId during = f.triggers.add(Phase::kDuring, "shutdown", f.note("during"));
  f.triggers.add(Phase::kBefore, "shutdown", [&] { ASSERT_TRUE(f.triggers.remove(during)); });
  f.triggers.fire("shutdown");
  EXPECT_TRUE(f.ran.empty());
}

TEST(SystemEventTriggers, TriggerAddedWhileFiringRunsIfItsPhaseIsAhead) {
  Fixture f;
  f.triggers.add(Phase::kBefore, "shutdown",
                 [&] { f.triggers.add(Phase::kAfter, "shutdown", f.note("late after")); });
  f.triggers.fire("shutdown");
  EXPECT_THAT(f.ran, ElementsAre("late after"));
}

TEST(SystemEventTriggers, RemovingUnknownOrFiredTriggerIsAnError) {
  Fixture f;
  TriggerId id = f.triggers.add(Phase::kDuring, "startup", [] {});
  f.triggers.fire("startup");
  EXPECT_THAT(f.triggers.remove(id), FailsWith(ReactorErrc::kNotRegistered));
  EXPECT_THAT(f.triggers.remove(TriggerId{12345}), FailsWith(ReactorErrc::kNotRegistered));
}

TEST(SystemEventTriggers, RemovedTriggerDoesNotRun) {
  Fixture f;
  TriggerId id = f.triggers.add(Phase::kDuring, "startup", f.note("gone"));
  f.triggers.add(Phase::kDuring, "startup", f.note("kept"));
  ASSERT_TRUE(f.triggers.remove(id));
  f.triggers.fire("startup");
  EXPECT_THAT(f.ran, ElementsAre("kept"));
}

TEST(SystemEventTriggers, HoldOutlivingTheTriggersIsHarmless) {
  std::optional<EventHold> kept;
  {
    SystemEventTriggers triggers{LogSink{}};
    triggers.add_holding("x", [&](EventHold h) { kept.emplace(std::move(h)); });
    triggers.fire("x");
    EXPECT_TRUE(kept->held());
  }
  EXPECT_FALSE(kept->held());
  kept->release();  // nothing left to continue; must not crash
}

}  // namespace
}  // namespace daemonkit::core
