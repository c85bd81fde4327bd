// app::run on the fake kernel, in the foreground (--nodaemon: the daemonizing order is the
// Runner's, pinned in runner_test.cpp): the command line's exits, a maker's refusal as a usage
// error, a whole run from the maker to the exit by SIGTERM with its log and PID file, --ready's
// sd_notify datagrams and keep-alives, --profile started in the daemon after privileges were
// shed and stopped at shutdown, and sockets passed by a service manager reaching the maker.
#include "daemonkit/core/app/app_run.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/app/cpu_profiler.h"
#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr const char* kOut = "/tmp/out";
constexpr const char* kErr = "/tmp/err";
constexpr const char* kLog = "/tmp/app.log";

// SIGTERM as the kernel would deliver it to the reactor's handler (the fake never runs one).
void deliver_sigterm(FakeSyscalls& os) {
  struct sigaction current {};
  ASSERT_TRUE(os.sigaction(SIGTERM, nullptr, &current));
  ASSERT_EQ(current.sa_handler, &SignalRouting::handle);
  current.sa_handler(SIGTERM);
}

// What the "hello" maker's service saw and did.
struct Seen {
  std::vector<std::string> events;
  std::optional<std::string> greeting;
  std::size_t activated = 0;
  bool same_os = false;
};

// Logs through the context, stops the run with SIGTERM `after` its start, and with
// --take-socket adopts the first passed socket's number into its events.
class Hello : public Service {
 public:
  Hello(const ServiceContext& context, FakeSyscalls& os, Seen& seen, Duration after)
      : Service("hello"), context_(context), os_(os), seen_(seen), after_(after) {}

 protected:
  StepResult<void> do_start() override {
    seen_.events.push_back(fmt::format("start@{}", os_.transcript().size()));
    context_.log("hello is up");
    timer_ = context_.reactor.call_later(after_, [this] { deliver_sigterm(os_); });
    return {};
  }
  Completion do_stop() override {
    seen_.events.push_back(fmt::format("stop@{}", os_.transcript().size()));
    return Completion::done();
  }

 private:
  ServiceContext context_;
  FakeSyscalls& os_;
  Seen& seen_;
  Duration after_;
  std::optional<DelayedCall> timer_;
};

std::vector<ServiceMaker> makers(FakeSyscalls& os, Seen& seen, Duration after = Duration::zero()) {
  ServiceMaker hello;
  hello.name = "hello";
  hello.description = "Says hello, then stops.";
  hello.options = {OptionSpec{"greeting", 'g', "TEXT", "What to say."}};
  hello.make = [&os, &seen, after](const MakerOptions& options, const ServiceContext& context)
      -> tl::expected<std::shared_ptr<Service>, std::string> {
    if (options.value("greeting") == std::optional<std::string>("no")) {
      return tl::unexpected(std::string("--greeting: 'no' is not a greeting"));
    }
    seen.greeting = options.value("greeting");
    seen.activated = context.activated.size();
    seen.same_os = &context.os == &os;
    context.application.set_process_name("hello-app");
    return std::make_shared<Hello>(context, os, seen, after);
  };
  return {hello};
}

struct Ran {
  std::optional<int> returned;     // run_app's return (usage errors and failed starts)
  std::optional<int> wait_status;  // how the process ended otherwise
  std::string out;
  std::string err;
  std::string log;
};

// Runs the program in a child of the calling process (the shell), which lives on to look at
// what it left. `listen_pid_is_ours`: $LISTEN_PID names the program's process, as systemd sets
// it.
Ran run(FakeSyscalls& os, AppInvocation invocation, std::span<const ServiceMaker> list,
        bool listen_pid_is_ours = false) {
  const pid_t shell = os.current_pid();
  os.script_fork(fake::ForkAs::kChild);
  EXPECT_TRUE(os.fork());
  if (listen_pid_is_ours) {
    invocation.activation.listen_pid = std::to_string(os.current_pid());
    invocation.environment.listen_pid = invocation.activation.listen_pid;
  }
  (void)os.open("/dev/null", O_RDONLY, 0);
  (void)os.open(kOut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  (void)os.open(kErr, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Ran ran;
  try {
    ran.returned = run_app(os, invocation, list);
  } catch (const fake::ProcessEnded& ended) {
    ran.wait_status = ended.wait_status;
  }
  os.switch_to(shell);
  ran.out = os.read_file(kOut).value_or("");
  ran.err = os.read_file(kErr).value_or("");
  ran.log = os.read_file(kLog).value_or("");
  return ran;
}

AppInvocation args(std::vector<std::string> words) {
  AppInvocation invocation;
  invocation.args = std::move(words);
  return invocation;
}

TEST(AppRun, HelpGoesToStdoutAndExitsZero) {
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  const Ran ran = run(os, args({"/usr/bin/hello", "--help"}), list);
  EXPECT_EQ(ran.returned, 0);
  EXPECT_THAT(ran.out, HasSubstr("Says hello, then stops."));
  EXPECT_EQ(ran.err, "");
  const Ran own = run(os, args({"hello", "hello", "--help"}), list);
  EXPECT_EQ(own.returned, 0);
  EXPECT_THAT(own.out, HasSubstr("--greeting"));
}

TEST(AppRun, UsageErrorsExitTwoAndMakeNothing) {
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  const Ran ran = run(os, args({"hello", "--nodaemon", "bye"}), list);
  EXPECT_EQ(ran.returned, 2);
  EXPECT_THAT(ran.err, HasSubstr("'bye' is not a command (hello)"));
  EXPECT_FALSE(seen.greeting);
  EXPECT_FALSE(os.stat_path(kLog));
}

TEST(AppRun, AMakersRefusalIsAUsageErrorNamingItsCommand) {
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  const Ran ran =
      run(os, args({"hello", "--nodaemon", "--logfile", kLog, "hello", "-g", "no"}), list);
  EXPECT_EQ(ran.returned, 2);
  EXPECT_EQ(ran.err,
            "hello hello: --greeting: 'no' is not a greeting\n"
            "Run 'hello hello --help' for more information.\n");
  EXPECT_FALSE(os.stat_path(kLog)) << "nothing is opened before the service exists";
}

TEST(AppRun, RunsTheMakersServiceToTheExitBySigterm) {
  FakeSyscalls os;
  os.make_dir("/run/app", 0755);
  Seen seen;
  const auto list = makers(os, seen);
  const Ran ran = run(os,
                      args({"/usr/bin/hello", "--nodaemon", "--pidfile", "/run/app/hello.pid",
                            "--logfile", kLog, "hello", "--greeting", "hi"}),
                      list);
  ASSERT_TRUE(ran.wait_status) << ran.err;
  EXPECT_TRUE(WIFSIGNALED(*ran.wait_status));
  EXPECT_EQ(WTERMSIG(*ran.wait_status), SIGTERM);
  EXPECT_EQ(seen.greeting, "hi");
  EXPECT_TRUE(seen.same_os);
  EXPECT_EQ(seen.activated, 0u);
  EXPECT_THAT(seen.events, ElementsAre(HasSubstr("start@"), HasSubstr("stop@")));
  EXPECT_THAT(ran.log, HasSubstr("starting up"));
  EXPECT_THAT(ran.log, HasSubstr("[hello] hello is up"));
  EXPECT_THAT(ran.log, HasSubstr("Server Shut Down."));
  EXPECT_FALSE(os.stat_path("/run/app/hello.pid"));
  bool named = false;
  for (const auto& r : os.transcript()) named = named || (r.name == "prctl" && r.ok());
  EXPECT_TRUE(named) << "the application's process name, set by the maker";
}

TEST(AppRun, AStartFailureExitsOneWithTheReason) {
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  const Ran ran = run(os,
                      args({"hello", "--nodaemon", "--logfile", kLog, "--pidfile",
                            "/no/such/dir/hello.pid", "hello"}),
                      list);
  ASSERT_TRUE(ran.wait_status);
  EXPECT_EQ(*ran.wait_status, W_EXITCODE(1, 0));
  EXPECT_THAT(ran.err, HasSubstr("ENOENT"));
  EXPECT_THAT(seen.events, IsEmpty());
}

// The service manager's end of $NOTIFY_SOCKET.
int listen_notify(FakeSyscalls& os, const std::string& path) {
  os.make_dir("/run/systemd", 0755);
  const int fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  auto to = notify_address(path);
  EXPECT_TRUE(to);
  EXPECT_TRUE(os.bind(fd, reinterpret_cast<const sockaddr*>(&to->address), to->length));
  return fd;
}

std::vector<std::string> received(FakeSyscalls& os, int fd) {
  std::vector<std::string> out;
  for (;;) {
    char buf[512];
    auto n = os.recvfrom(fd, buf, sizeof buf, 0, nullptr, nullptr);
    if (!n) break;
    out.emplace_back(buf, *n);
  }
  return out;
}

AppInvocation under_systemd(std::vector<std::string> words) {
  AppInvocation invocation = args(std::move(words));
  invocation.environment.notify_socket = "/run/systemd/notify";
  invocation.notify.notify_socket = "/run/systemd/notify";
  invocation.notify.watchdog_usec = "2000000";  // a keep-alive every second
  return invocation;
}

TEST(AppRun, ReadySpeaksSdNotifyReadyKeepAlivesAndStopping) {
  FakeSyscalls os;
  const int manager = listen_notify(os, "/run/systemd/notify");
  Seen seen;
  const auto list = makers(os, seen, std::chrono::milliseconds(3500));
  const Ran ran = run(os, under_systemd({"hello", "--ready", "--logfile", kLog, "hello"}), list);
  ASSERT_TRUE(ran.wait_status) << ran.err;
  EXPECT_EQ(WTERMSIG(*ran.wait_status), SIGTERM);
  EXPECT_THAT(received(os, manager), ElementsAre("READY=1\n", "WATCHDOG=1\n", "WATCHDOG=1\n",
                                                 "WATCHDOG=1\n", "STOPPING=1\n"));
  EXPECT_THAT(ran.log, HasSubstr("$NOTIFY_SOCKET")) << "why it did not fork";
}

TEST(AppRun, WithoutReadyNothingIsSaidToTheManager) {
  FakeSyscalls os;
  const int manager = listen_notify(os, "/run/systemd/notify");
  Seen seen;
  const auto list = makers(os, seen, std::chrono::milliseconds(3500));
  const Ran ran = run(os, under_systemd({"hello", "--nodaemon", "--logfile", kLog, "hello"}), list);
  ASSERT_TRUE(ran.wait_status) << ran.err;
  EXPECT_THAT(received(os, manager), IsEmpty());
}

// The profiler's calls, into the same list as the service's steps.
ProfilerHooks recording(FakeSyscalls& os, std::vector<std::string>& events, bool fail = false) {
  ProfilerHooks hooks;
  hooks.start = [&os, &events, fail](const std::string& path) -> tl::expected<void, std::string> {
    const auto ids = os.getresuid();
    events.push_back(fmt::format("profile {} as uid {}", path, ids ? ids->effective : 0));
    if (fail) return tl::unexpected(std::string("--profile " + path + ": cannot write"));
    return {};
  };
  hooks.stop = [&events] { events.emplace_back("profile written"); };
  return hooks;
}

// gperftools opens the file by name, following symlinks: started as root, a link planted in a
// directory the daemon's user controls would make root write there.
TEST(AppRun, TheProfilerStartsAsTheDroppedUserBeforeTheServicesAndStopsAfterThem) {
  if (!cpu_profiler_available()) GTEST_SKIP() << "built without gperftools: --profile refused";
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  AppInvocation invocation = args({"hello", "--nodaemon", "--uid", "nobody", "--logfile", kLog,
                                   "--profile", "/tmp/hello.prof", "hello"});
  invocation.profiler = recording(os, seen.events);
  const Ran ran = run(os, invocation, list);
  ASSERT_TRUE(ran.wait_status) << ran.err;
  EXPECT_THAT(seen.events, ElementsAre("profile /tmp/hello.prof as uid 65534", HasSubstr("start@"),
                                       HasSubstr("stop@"), "profile written"));
}

TEST(AppRun, AProfilerThatCannotStartFailsTheStart) {
  if (!cpu_profiler_available()) GTEST_SKIP() << "built without gperftools: --profile refused";
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  AppInvocation invocation =
      args({"hello", "--nodaemon", "--logfile", kLog, "--profile", "/tmp/p", "hello"});
  invocation.profiler = recording(os, seen.events, /*fail=*/true);
  const Ran ran = run(os, invocation, list);
  ASSERT_TRUE(ran.wait_status);
  EXPECT_EQ(*ran.wait_status, W_EXITCODE(1, 0));
  EXPECT_THAT(ran.err, HasSubstr("--profile /tmp/p: cannot write"));
  EXPECT_THAT(seen.events, ElementsAre("profile /tmp/p as uid 0")) << "no service started";
}

// systemd passed one listening socket as descriptor 3: the maker gets it, and it is still open
// when the service runs.
TEST(AppRun, SocketsAServiceManagerPassedReachTheMaker) {
  FakeSyscalls os;
  (void)os.open("/dev/null", O_RDONLY, 0);
  (void)os.open("/dev/null", O_RDONLY, 0);
  (void)os.open("/dev/null", O_RDONLY, 0);
  const int passed = *os.socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(passed, 3);
  for (int fd : {0, 1, 2}) (void)os.close(fd);
  Seen seen;
  const auto list = makers(os, seen);
  AppInvocation invocation = args({"hello", "--nodaemon", "--logfile", kLog, "hello"});
  invocation.activation.listen_fds = "1";
  const Ran ran = run(os, invocation, list, /*listen_pid_is_ours=*/true);
  ASSERT_TRUE(ran.wait_status) << ran.err;
  EXPECT_EQ(seen.activated, 1u);
}

TEST(AppRun, BadActivationVariablesFailTheStartBeforeAnythingOpens) {
  FakeSyscalls os;
  Seen seen;
  const auto list = makers(os, seen);
  AppInvocation invocation = args({"hello", "--nodaemon", "--logfile", kLog, "hello"});
  invocation.activation.listen_fds = "two";
  const Ran ran = run(os, invocation, list, /*listen_pid_is_ours=*/true);
  EXPECT_EQ(ran.returned, 1);
  EXPECT_THAT(ran.err, HasSubstr("hello: socket activation"));
  EXPECT_THAT(ran.err, HasSubstr("LISTEN_FDS"));
  EXPECT_FALSE(os.stat_path(kLog));
}

}  // namespace
}  // namespace daemonkit::core
