// Services, multi-services and the application: the state rules, start in order and stop in
// reverse (each stop after the later one completed), stops that complete later, errors during
// start and stop (reported, with the child's name, and what a failed start leaves running:
// nothing), duplicate names, children added to or removed from a running parent.
#include "daemonkit/core/app/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/multi_service.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FailsWithMessage;
using fake::IsOk;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

using Journal = std::vector<std::string>;

// A service that writes what happens to it into a shared journal, and fails or holds its stop
// open when told to.
class Probe : public Service {
 public:
  Probe(std::string name, Journal& journal) : Service(std::move(name)), journal_(journal) {}

  std::optional<std::string> fail_privileged;
  std::optional<std::string> fail_start;
  std::optional<std::string> fail_stop;
  bool hold_stop = false;  // the stop completes when release() is called
  // What start does besides succeeding or failing (adding a sibling, say).
  std::function<void()> during_start;

  void release() { held_.complete(); }
  void release_with(std::string why) {
    held_.fail(StepError::plain(StepKind::kApplication, std::move(why)));
  }

 protected:
  StepResult<void> do_privileged_start() override {
    journal_.push_back("privileged " + name());
    if (fail_privileged)
      return step_failed(StepError::plain(StepKind::kApplication, *fail_privileged));
    return {};
  }
  StepResult<void> do_start() override {
    journal_.push_back("start " + name());
    if (during_start) during_start();
    if (fail_start) return step_failed(StepError::plain(StepKind::kApplication, *fail_start));
    return {};
  }
  Completion do_stop() override {
    journal_.push_back("stop " + name());
    if (fail_stop) return Completion::done({StepError::plain(StepKind::kApplication, *fail_stop)});
    if (!hold_stop) return Completion::done();
    held_ = Completion();
    return held_;
  }

 private:
  Journal& journal_;
  Completion held_ = Completion::done();
};

struct Tree {
  Journal journal;
  MultiService top{"top"};
  std::shared_ptr<Probe> add(const std::string& name) {
    auto probe = std::make_shared<Probe>(name, journal);
    EXPECT_THAT(top.add(probe), IsOk());
    return probe;
  }
};

std::vector<std::string> messages(const Completion::Errors& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.message);
  return out;
}

// ---- Completion ------------------------------------------------------------------------------

TEST(Completion, CallbacksRunOnceInOrderAndLateOnesRunAtOnce) {
  Completion c;
  std::vector<int> seen;
  c.on_complete([&](const Completion::Errors&) { seen.push_back(1); });
  c.on_complete([&](const Completion::Errors&) { seen.push_back(2); });
  EXPECT_FALSE(c.completed());
  EXPECT_TRUE(c.complete());
  EXPECT_FALSE(c.complete()) << "a second completion must not count";
  c.on_complete([&](const Completion::Errors&) { seen.push_back(3); });
  EXPECT_THAT(seen, ElementsAre(1, 2, 3));
}

TEST(Completion, AllWaitsForEveryPartAndKeepsTheirOrder) {
  Completion a, b;
  Completion whole = Completion::all({a, b});
  ASSERT_TRUE(b.fail(StepError::plain(StepKind::kApplication, "b broke")));
  EXPECT_FALSE(whole.completed());
  ASSERT_TRUE(a.fail(StepError::plain(StepKind::kApplication, "a broke")));
  ASSERT_TRUE(whole.completed());
  EXPECT_THAT(messages(whole.errors()), ElementsAre("a broke", "b broke"));
  EXPECT_TRUE(Completion::all({}).completed());
}

// ---- Service ---------------------------------------------------------------------------------

TEST(Service, StatesFollowStartAndStop) {
  Journal j;
  Probe p("p", j);
  EXPECT_EQ(p.state(), ServiceState::kStopped);
  ASSERT_THAT(p.privileged_start(), IsOk());
  EXPECT_EQ(p.state(), ServiceState::kPrivileged);
  EXPECT_FALSE(p.running());
  ASSERT_THAT(p.start(), IsOk());
  EXPECT_TRUE(p.running());
  EXPECT_TRUE(p.stop().completed());
  EXPECT_EQ(p.state(), ServiceState::kStopped);
  EXPECT_THAT(j, ElementsAre("privileged p", "start p", "stop p"));
}

TEST(Service, SecondStartIsRefusedNotRunTwice) {
  Journal j;
  Probe p("p", j);
  ASSERT_THAT(p.start(), IsOk());
  EXPECT_THAT(p.start(), FailsWithMessage("service 'p': start while running"));
  EXPECT_THAT(p.privileged_start(), FailsWith(StepKind::kOptions));
  EXPECT_THAT(j, ElementsAre("start p"));
}

TEST(Service, StopOfAStoppedServiceCompletesAndDoesNothing) {
  Journal j;
  Probe p("p", j);
  EXPECT_TRUE(p.stop().completed());
  EXPECT_THAT(j, IsEmpty());
}

TEST(Service, StopThatFinishesLaterKeepsTheServiceStoppingUntilThen) {
  Journal j;
  Probe p("p", j);
  p.hold_stop = true;
  ASSERT_THAT(p.start(), IsOk());
  Completion first = p.stop();
  EXPECT_FALSE(first.completed());
  EXPECT_EQ(p.state(), ServiceState::kStopping);
  // A second stop joins the first; a start meanwhile is refused.
  Completion second = p.stop();
  EXPECT_TRUE(second.same_as(first));
  EXPECT_THAT(p.start(), FailsWithMessage("service 'p': start while stopping"));
  p.release();
  EXPECT_TRUE(first.completed());
  EXPECT_EQ(p.state(), ServiceState::kStopped);
  EXPECT_THAT(j, ElementsAre("start p", "stop p"));
  // And it starts again.
  EXPECT_THAT(p.start(), IsOk());
}

TEST(Service, StopErrorsAreCarriedAndTheServiceIsStoppedAnyway) {
  Journal j;
  Probe p("p", j);
  p.fail_stop = "close(7): Bad file descriptor (EBADF)";
  ASSERT_THAT(p.start(), IsOk());
  Completion c = p.stop();
  ASSERT_TRUE(c.completed());
  EXPECT_THAT(messages(c.errors()), ElementsAre("close(7): Bad file descriptor (EBADF)"));
  EXPECT_EQ(p.state(), ServiceState::kStopped);
}

TEST(Service, DestroyingAStoppingServiceLeavesItsStopSafeToComplete) {
  Journal j;
  Completion c;
  {
    auto p = std::make_unique<Probe>("p", j);
    p->hold_stop = true;
    ASSERT_THAT(p->start(), IsOk());
    c = p->stop();
    // The probe's own handle goes with it; completing ours must not reach the dead service.
  }
  EXPECT_FALSE(c.completed());
  EXPECT_TRUE(c.complete());
}

TEST(Service, NameCannotChangeUnderAParent) {
  Tree t;
  auto a = t.add("a");
  EXPECT_THAT(a->set_name("b"), FailsWithMessage("cannot change name when parent exists"));
  EXPECT_EQ(a->name(), "a");
  ASSERT_TRUE(t.top.remove(*a));
  EXPECT_THAT(a->set_name("b"), IsOk());
}

// ---- MultiService ----------------------------------------------------------------------------

TEST(MultiService, StartsInOrderAndStopsInReverse) {
  Tree t;
  t.add("a");
  t.add("b");
  t.add("c");
  ASSERT_THAT(t.top.privileged_start(), IsOk());
  ASSERT_THAT(t.top.start(), IsOk());
  Completion c = t.top.stop();
  EXPECT_TRUE(c.completed());
  EXPECT_THAT(t.journal, ElementsAre("privileged a", "privileged b", "privileged c", "start a",
                                     "start b", "start c", "stop c", "stop b", "stop a"));
}

TEST(MultiService, EachStopBeginsWhenTheLaterChildsStopCompleted) {
  Tree t;
  auto a = t.add("a");
  auto b = t.add("b");
  a->hold_stop = true;
  b->hold_stop = true;
  ASSERT_THAT(t.top.start(), IsOk());
  t.journal.clear();
  Completion c = t.top.stop();
  // b (the later) drains first; a still serves it meanwhile.
  EXPECT_THAT(t.journal, ElementsAre("stop b"));
  EXPECT_EQ(a->state(), ServiceState::kRunning);
  b->release();
  EXPECT_THAT(t.journal, ElementsAre("stop b", "stop a"));
  EXPECT_FALSE(c.completed());
  EXPECT_EQ(t.top.state(), ServiceState::kStopping);
  a->release();
  EXPECT_TRUE(c.completed());
  EXPECT_EQ(t.top.state(), ServiceState::kStopped);
}

TEST(MultiService, ChildStopErrorsAreReportedWithTheirNamesAndTheRestStillStop) {
  Tree t;
  auto a = t.add("a");
  auto b = t.add("b");
  auto c = t.add("c");
  b->fail_stop = "close(5): Input/output error (EIO)";
  a->hold_stop = true;
  ASSERT_THAT(t.top.start(), IsOk());
  Completion done = t.top.stop();
  a->release_with("drain timed out");
  ASSERT_TRUE(done.completed());
  EXPECT_THAT(messages(done.errors()),
              ElementsAre("service 'b': close(5): Input/output error (EIO)",
                          "service 'a': drain timed out"));
  for (const auto& s : {a, b, c}) EXPECT_EQ(s->state(), ServiceState::kStopped);
}

TEST(MultiService, NeverStartedChildrenAreNotStopped) {
  // Twisted stops every child, started or not. Here a child added after the parent's
  // privileged start (so never started at all) is left alone.
  Tree t;
  t.add("a");
  ASSERT_THAT(t.top.privileged_start(), IsOk());
  auto late = t.add("late");
  EXPECT_EQ(late->state(), ServiceState::kStopped);
  t.journal.clear();
  EXPECT_TRUE(t.top.stop().completed());
  EXPECT_THAT(t.journal, ElementsAre("stop a"));
}

TEST(MultiService, FailedStartStopsTheChildrenStartedBeforeItInReverse) {
  Tree t;
  auto a = t.add("a");
  auto b = t.add("b");
  auto c = t.add("c");
  auto d = t.add("d");
  c->fail_start = "bind(0.0.0.0:80): Address already in use (EADDRINUSE)";
  ASSERT_THAT(t.top.privileged_start(), IsOk());
  t.journal.clear();
  auto started = t.top.start();
  ASSERT_THAT(started, FailsWith(StepKind::kApplication));
  EXPECT_EQ(started.error().message,
            "service 'c': bind(0.0.0.0:80): Address already in use (EADDRINUSE)");
  // d was privileged-started (it may hold a port), so it is stopped too; c undid its own start.
  EXPECT_THAT(t.journal,
              ElementsAre("start a", "start b", "start c", "stop d", "stop b", "stop a"));
  EXPECT_EQ(t.top.state(), ServiceState::kStopped);
  for (const auto& s : {a, b, c, d}) EXPECT_EQ(s->state(), ServiceState::kStopped);
}

TEST(MultiService, FailedStartWhoseUndoingTakesTimeIsStoppingUntilItCompletes) {
  Tree t;
  auto a = t.add("a");
  auto b = t.add("b");
  a->hold_stop = true;
  b->fail_start = "no";
  ASSERT_FALSE(t.top.start());
  EXPECT_EQ(t.top.state(), ServiceState::kStopping);
  EXPECT_THAT(t.top.start(), FailsWith(StepKind::kOptions));
  Completion undone = t.top.stop();
  EXPECT_FALSE(undone.completed());
  a->release_with("slow drain failed");
  ASSERT_TRUE(undone.completed());
  EXPECT_THAT(messages(undone.errors()), ElementsAre("service 'a': slow drain failed"));
  EXPECT_EQ(t.top.state(), ServiceState::kStopped);
}

TEST(MultiService, FailedPrivilegedStartUndoesTheChildrenBeforeIt) {
  Tree t;
  t.add("a");
  auto b = t.add("b");
  t.add("c");
  b->fail_privileged = "bind(0.0.0.0:443): Permission denied (EACCES)";
  EXPECT_THAT(t.top.privileged_start(),
              FailsWithMessage("service 'b': bind(0.0.0.0:443): Permission denied (EACCES)"));
  EXPECT_THAT(t.journal, ElementsAre("privileged a", "privileged b", "stop a"));
  EXPECT_EQ(t.top.state(), ServiceState::kStopped);
}

TEST(MultiService, DuplicateNamesAreRefusedAndTheChildKeepsNoParent) {
  Tree t;
  t.add("web");
  auto twin = std::make_shared<Probe>("web", t.journal);
  EXPECT_THAT(t.top.add(twin), FailsWithMessage("cannot have two services with same name 'web'"));
  EXPECT_EQ(twin->parent(), nullptr);
  EXPECT_EQ(t.top.children().size(), 1u);
  // Unnamed services never clash.
  EXPECT_THAT(t.top.add(std::make_shared<Probe>("", t.journal)), IsOk());
  EXPECT_THAT(t.top.add(std::make_shared<Probe>("", t.journal)), IsOk());
}

TEST(MultiService, ASecondParentOrACycleIsRefused) {
  Tree t;
  auto a = t.add("a");
  MultiService other("other");
  EXPECT_THAT(other.add(a), FailsWithMessage("service 'a' already has a parent, service 'top'"));
  auto inner = std::make_shared<MultiService>("inner");
  ASSERT_THAT(t.top.add(inner), IsOk());
  auto outer = std::shared_ptr<MultiService>(std::shared_ptr<MultiService>{}, &t.top);
  EXPECT_THAT(inner->add(outer), FailsWith(StepKind::kOptions));
  EXPECT_THAT(t.top.add(nullptr), FailsWith(StepKind::kOptions));
}

TEST(MultiService, FindsChildrenByName) {
  Tree t;
  auto a = t.add("a");
  EXPECT_EQ(t.top.find("a"), a.get());
  EXPECT_EQ(t.top.find("b"), nullptr);
  EXPECT_EQ(a->parent(), &t.top);
}

TEST(MultiService, ChildAddedToARunningParentStarts) {
  Tree t;
  ASSERT_THAT(t.top.start(), IsOk());
  auto late = t.add("late");
  EXPECT_TRUE(late->running());
  EXPECT_THAT(t.journal, ElementsAre("privileged late", "start late"));
}

TEST(MultiService, ChildThatFailsToStartWhenAddedIsNotKept) {
  Tree t;
  ASSERT_THAT(t.top.start(), IsOk());
  auto bad = std::make_shared<Probe>("bad", t.journal);
  bad->fail_start = "no database";
  EXPECT_THAT(t.top.add(bad), FailsWithMessage("service 'bad': no database"));
  EXPECT_EQ(t.top.find("bad"), nullptr);
  EXPECT_EQ(bad->parent(), nullptr);
}

TEST(MultiService, ChildAddedDuringASiblingsStartStartsOnce) {
  Tree t;
  auto a = t.add("a");
  std::shared_ptr<Probe> late;
  a->during_start = [&] {
    late = std::make_shared<Probe>("late", t.journal);
    ASSERT_THAT(t.top.add(late), IsOk());
  };
  ASSERT_THAT(t.top.start(), IsOk());
  EXPECT_THAT(t.journal, ElementsAre("start a", "privileged late", "start late"));
}

TEST(MultiService, RemovingARunningChildStopsItAndKeepsItAliveUntilStopped) {
  Tree t;
  auto a = t.add("a");
  a->hold_stop = true;
  ASSERT_THAT(t.top.start(), IsOk());
  std::weak_ptr<Probe> watch = a;
  Probe& probe = *a;
  auto removed = t.top.remove(probe);
  ASSERT_THAT(removed, IsOk());
  a.reset();
  EXPECT_FALSE(watch.expired()) << "the stop under way keeps the child";
  EXPECT_EQ(t.top.find("a"), nullptr);
  EXPECT_FALSE(removed->completed());
  probe.release();
  EXPECT_TRUE(removed->completed());
  EXPECT_TRUE(watch.expired());
}

TEST(MultiService, DisowningIsRemovingFromTheParent) {
  Tree t;
  auto a = t.add("a");
  ASSERT_THAT(t.top.start(), IsOk());
  auto disowned = a->disown_parent();
  ASSERT_THAT(disowned, IsOk());
  EXPECT_TRUE(disowned->completed());
  EXPECT_EQ(a->parent(), nullptr);
  EXPECT_EQ(a->state(), ServiceState::kStopped);
  EXPECT_THAT(a->disown_parent(), FailsWithMessage("service 'a' has no parent"));
}

TEST(MultiService, RemovingAServiceThatIsNotAChildIsRefused) {
  Tree t;
  Journal j;
  Probe stranger("stranger", j);
  EXPECT_THAT(t.top.remove(stranger),
              FailsWithMessage("service 'stranger' is not a child of service 'top'"));
}

TEST(MultiService, NestedFailuresNameThePath) {
  Tree t;
  auto group = std::make_shared<MultiService>("group");
  ASSERT_THAT(t.top.add(group), IsOk());
  auto leaf = std::make_shared<Probe>("leaf", t.journal);
  leaf->fail_start = "broken";
  ASSERT_THAT(group->add(leaf), IsOk());
  EXPECT_THAT(t.top.start(), FailsWithMessage("service 'group': service 'leaf': broken"));
}

// ---- Application -----------------------------------------------------------------------------

TEST(Application, HoldsNameIdsProcessNameAndATopServiceNamedAfterIt) {
  Application app("echod", "nobody", "65534");
  EXPECT_EQ(app.name(), "echod");
  EXPECT_EQ(app.service().name(), "echod");
  EXPECT_EQ(app.service().parent(), nullptr);
  EXPECT_EQ(app.user(), "nobody");
  EXPECT_EQ(app.group(), "65534");
  const PrivilegeRequest request = app.privileges();
  EXPECT_EQ(request.user, "nobody");
  EXPECT_EQ(request.group, "65534");
  EXPECT_FALSE(request.euid);
  EXPECT_EQ(app.process_name(), std::nullopt);
  app.set_process_name("echod: serving");
  EXPECT_EQ(app.process_name(), "echod: serving");

  Application plain("x");
  EXPECT_EQ(plain.user(), std::nullopt);
  EXPECT_EQ(plain.group(), std::nullopt);
}

}  // namespace
}  // namespace daemonkit::core
