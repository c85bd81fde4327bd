// app::run's command line: the daemon options shared with `daemonkit run`, app::run's own,
// service makers as subcommands with their own options and --help, twistd's help shape, and
// usage errors (exit 2, the problem and a hint to --help). Also the process name, on the fake,
// and the --profile hook.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/core/app/app_command_line.h"
#include "daemonkit/core/app/cpu_profiler.h"
#include "daemonkit/core/app/process_name.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript.h"

namespace daemonkit::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::vector<ServiceMaker> makers() {
  std::vector<ServiceMaker> list;
  list.push_back(ServiceMaker{
      "echo",
      "An echo server.",
      {OptionSpec{"port", 'p', "ENDPOINT", "Where to listen."},
       OptionSpec{"verbose", 'v', "", "Log every connection."}},
      "[OPTIONS] [GREETING]",
      [](const MakerOptions& options,
         const ServiceContext&) -> tl::expected<std::shared_ptr<Service>, std::string> {
        if (!options.has("port")) return tl::unexpected(std::string("--port is required"));
        return std::make_shared<Service>("echo on " + *options.value("port"));
      }});
  list.push_back(ServiceMaker{"web", "A web server.", {}, "[OPTIONS]", {}});
  return list;
}

const std::vector<ServiceMaker> kMakers = makers();

AppParsed parse(std::vector<std::string> words) {
  words.insert(words.begin(), "/usr/sbin/echod");
  return parse_app_command_line(words, kMakers);
}

AppCommandLine parse_ok(std::vector<std::string> words) {
  AppParsed parsed = parse(std::move(words));
  if (auto* exit = std::get_if<AppExit>(&parsed)) {
    ADD_FAILURE() << "exit " << exit->code << ": " << exit->err;
    return {};
  }
  return std::get<AppCommandLine>(parsed);
}

AppExit parse_exit(std::vector<std::string> words) {
  AppParsed parsed = parse(std::move(words));
  if (!std::holds_alternative<AppExit>(parsed)) {
    ADD_FAILURE() << "parsed without an exit";
    return {};
  }
  return std::get<AppExit>(parsed);
}

// A usage error: exit 2, nothing on stdout, the problem then the hint on stderr.
void expect_usage_error(const std::vector<std::string>& words, const std::string& problem,
                        const std::string& where = "echod") {
  const AppExit exit = parse_exit(words);
  EXPECT_EQ(exit.code, kUsageExit);
  EXPECT_EQ(exit.out, "");
  EXPECT_EQ(exit.err,
            where + ": " + problem + "\nRun '" + where + " --help' for more information.\n");
}

TEST(AppCommandLine, DefaultsWithOnlyACommand) {
  const AppCommandLine line = parse_ok({"echo"});
  EXPECT_EQ(static_cast<const DaemonOptionValues&>(line), DaemonOptionValues{});
  EXPECT_EQ(line.effective_umask(), std::optional<mode_t>(0077));
  EXPECT_FALSE(line.syslog);
  EXPECT_EQ(line.prefix, "echod");  // argv[0] without its directory
  EXPECT_EQ(line.profile, "");
  EXPECT_FALSE(line.ready);
  ASSERT_NE(line.maker, nullptr);
  EXPECT_EQ(line.maker, &kMakers[0]);
  EXPECT_EQ(line.maker_options, MakerOptions{});
}

TEST(AppCommandLine, EveryDaemonOptionIsRead) {
  const AppCommandLine line =
      parse_ok({"--nodaemon", "--pidfile", "/run/echod.pid", "--rundir=/srv", "--chroot", "/jail",
                "--umask", "022", "--uid", "1001", "--gid", "daemon", "--euid", "--logfile",
                "/var/log/echod.log", "echo"});
  EXPECT_TRUE(line.nodaemon);
  EXPECT_EQ(line.pidfile, "/run/echod.pid");
  EXPECT_EQ(line.rundir, "/srv");
  EXPECT_EQ(line.chroot, "/jail");
  EXPECT_EQ(line.umask, std::optional<mode_t>(022));
  EXPECT_EQ(line.uid, (IdSpec{"1001", 1001UL}));
  EXPECT_EQ(line.gid, (IdSpec{"daemon", std::nullopt}));
  EXPECT_TRUE(line.euid);
  EXPECT_EQ(line.logfile, "/var/log/echod.log");
  EXPECT_EQ(line.effective_umask(), std::optional<mode_t>(022));
}

TEST(AppCommandLine, ShortFormsOfTheDaemonOptions) {
  const AppCommandLine line =
      parse_ok({"-n", "-d", "/srv", "-u", "www", "-g", "7", "-l", "x.log", "echo"});
  EXPECT_TRUE(line.nodaemon);
  EXPECT_EQ(line.rundir, "/srv");
  EXPECT_EQ(line.uid, (IdSpec{"www", std::nullopt}));
  EXPECT_EQ(line.gid, (IdSpec{"7", 7UL}));
  EXPECT_EQ(line.logfile, "x.log");
  EXPECT_EQ(line.effective_umask(), std::nullopt);  // kept as is in the foreground
}

TEST(AppCommandLine, TheSharedDaemonOptionsAreTheSameRowsAsDaemonkitRuns) {
  // Both tables come from the same rows: names, short forms and value shapes are one.
  const auto for_app = daemon_option_specs(DaemonSubject::kApplication);
  const auto for_run = daemon_option_specs(DaemonSubject::kProgram);
  const std::string help = parse_exit({"--help"}).out;
  for (std::size_t i = 0; i < kDaemonOptionCount; ++i) {
    EXPECT_STREQ(for_app[i].long_name, for_run[i].long_name);
    EXPECT_EQ(for_app[i].short_name, for_run[i].short_name);
    EXPECT_EQ(for_app[i].value_name, for_run[i].value_name);
    EXPECT_THAT(help, HasSubstr(option_name(for_app[i]))) << for_app[i].long_name;
  }
}

TEST(AppCommandLine, SharedOptionErrorsReadAsDaemonkitRunsDo) {
  expect_usage_error({"--umask", "9", "echo"},
                     "--umask: '9' is not an octal mode from 0 to 0777 (e.g. 022)");
  expect_usage_error({"--rundir=", "echo"}, "--rundir: a directory is required");
  expect_usage_error({"--euid", "echo"}, "--euid needs --uid or --gid");
}

TEST(AppCommandLine, SyslogWithPrefix) {
  const AppCommandLine line = parse_ok({"--syslog", "--prefix", "echo-7", "echo"});
  EXPECT_TRUE(line.syslog);
  EXPECT_EQ(line.prefix, "echo-7");
  EXPECT_TRUE(parse_ok({"--syslog", "echo"}).syslog);
}

TEST(AppCommandLine, PrefixWithoutSyslogOrEmptyIsAUsageError) {
  expect_usage_error({"--prefix", "x", "echo"},
                     "--prefix names the syslog ident; it needs --syslog");
  expect_usage_error({"--syslog", "--prefix=", "echo"}, "--prefix: a name is required");
}

TEST(AppCommandLine, SyslogAndLogfileTogetherIsAUsageError) {
  expect_usage_error({"--syslog", "--logfile", "x.log", "echo"},
                     "--syslog and --logfile: log to one or the other");
}

TEST(AppCommandLine, LogfileDashIsStdoutOnlyWithNodaemon) {
  expect_usage_error({"--logfile", "-", "echo"},
                     "--logfile -: a daemon has no standard output to log to; it needs --nodaemon");
  const AppCommandLine line = parse_ok({"--nodaemon", "--logfile=-", "echo"});
  EXPECT_EQ(line.logfile, "-");
}

TEST(AppCommandLine, Ready) {
  EXPECT_TRUE(parse_ok({"--ready", "echo"}).ready);
  expect_usage_error({"--ready=notify", "echo"}, "--ready takes no value");
}

TEST(AppCommandLine, ProfileNeedsAFileAndGperftools) {
  expect_usage_error({"--profile=", "echo"}, "--profile: a file is required");
  if (cpu_profiler_available()) {
    EXPECT_EQ(parse_ok({"--profile", "/tmp/echod.prof", "echo"}).profile, "/tmp/echod.prof");
  } else {
    expect_usage_error({"--profile", "/tmp/echod.prof", "echo"},
                       "--profile: built without gperftools");
  }
}

TEST(AppCommandLine, OptionGivenTwiceIsAUsageError) {
  expect_usage_error({"--pidfile", "a", "--pidfile", "b", "echo"}, "--pidfile is given twice");
  expect_usage_error({"--syslog", "--syslog", "echo"}, "--syslog is given twice");
  expect_usage_error({"echo", "-v", "--verbose"}, "--verbose is given twice", "echod echo");
}

TEST(AppCommandLine, UnknownOptionIsAUsageError) {
  expect_usage_error({"--bogus", "echo"}, "unknown option '--bogus'");
  expect_usage_error({"-x", "echo"}, "unknown option '-x'");
  expect_usage_error({"--pidfile"}, "--pidfile needs a value (PATH)");
}

TEST(AppCommandLine, MissingCommandIsAUsageErrorWithTheHelp) {
  const AppExit exit = parse_exit({"--nodaemon"});
  EXPECT_EQ(exit.code, kUsageExit);
  EXPECT_EQ(exit.out, "");
  EXPECT_THAT(exit.err, StartsWith("echod: a command is required\n"));
  EXPECT_THAT(exit.err, HasSubstr("\nCommands:\n  echo  An echo server.\n  web   A web server.\n"));
}

TEST(AppCommandLine, UnknownCommandIsAUsageErrorListingTheMakers) {
  expect_usage_error({"ftp"}, "'ftp' is not a command (echo, web)");
  const std::vector<std::string> words{"echod", "ftp"};
  const AppParsed none = parse_app_command_line(words, {});
  ASSERT_TRUE(std::holds_alternative<AppExit>(none));
  EXPECT_THAT(std::get<AppExit>(none).err, StartsWith("echod: 'ftp' is not a command\n"));
}

TEST(AppCommandLine, HelpHasTwistdsShapeOptionsThenCommands) {
  const AppExit exit = parse_exit({"--help"});
  EXPECT_EQ(exit.code, 0);
  EXPECT_EQ(exit.err, "");
  const std::string& help = exit.out;
  EXPECT_THAT(help, StartsWith("Runs one of the services below, as a daemon unless --nodaemon.\n"
                               "Usage: echod [OPTIONS] COMMAND [COMMAND OPTIONS]\n"));
  const auto options = help.find("\nOptions:\n");
  const auto commands = help.find("\nCommands:\n  echo  An echo server.\n  web   A web server.\n");
  ASSERT_NE(options, std::string::npos);
  ASSERT_NE(commands, std::string::npos);
  EXPECT_LT(options, commands);
  for (const char* line : {"\n  -h, --help ", "\n  -n, --nodaemon ", "\n      --pidfile PATH ",
                           "\n  -l, --logfile PATH ", "\n      --syslog ", "\n      --prefix NAME ",
                           "\n      --profile FILE ", "\n      --ready "}) {
    EXPECT_THAT(help.substr(options, commands - options), HasSubstr(line));
  }
  EXPECT_THAT(help, HasSubstr("Run 'echod COMMAND --help' for a command's options."));
  // The help words are the application's, not `daemonkit run`'s PROGRAM.
  EXPECT_THAT(help, Not(HasSubstr("PROGRAM")));
  // -h answers the same, and --help wins over the command and its options.
  EXPECT_EQ(parse_exit({"-h"}).out, help);
  EXPECT_EQ(parse_exit({"--help", "echo", "--bogus"}).out, help);
}

TEST(AppCommandLine, EachCommandHasItsOwnHelp) {
  const AppExit exit = parse_exit({"--nodaemon", "echo", "--help"});
  EXPECT_EQ(exit.code, 0);
  EXPECT_THAT(exit.out, StartsWith("An echo server.\nUsage: echod echo [OPTIONS] [GREETING]\n"));
  EXPECT_THAT(exit.out, HasSubstr("\n  -p, --port ENDPOINT  Where to listen.\n"));
  EXPECT_THAT(exit.out, HasSubstr("\n  -v, --verbose "));
  EXPECT_THAT(exit.out, Not(HasSubstr("--nodaemon")));
  EXPECT_EQ(parse_exit({"web", "-h"}).code, 0);
  EXPECT_THAT(parse_exit({"web", "-h"}).out, StartsWith("A web server.\nUsage: echod web"));
}

TEST(AppCommandLine, MakerOptionsAndOperandsReachTheMaker) {
  const AppCommandLine line = parse_ok({"-n", "echo", "-p", "tcp:7", "--verbose", "hello", "-x"});
  EXPECT_TRUE(line.nodaemon);
  ASSERT_EQ(line.maker, &kMakers[0]);
  EXPECT_TRUE(line.maker_options.has("port"));
  EXPECT_EQ(line.maker_options.value("port"), std::optional<std::string>("tcp:7"));
  EXPECT_TRUE(line.maker_options.has("verbose"));
  EXPECT_EQ(line.maker_options.value("verbose"), std::optional<std::string>(""));
  EXPECT_FALSE(line.maker_options.has("bogus"));
  // Past the first operand nothing is an option: "-x" is the maker's to read.
  EXPECT_EQ(line.maker_options.operands, (std::vector<std::string>{"hello", "-x"}));
  fake::FakeSyscalls os;
  auto reactor = Reactor::create(os);
  ASSERT_TRUE(reactor);
  ActivatedSockets none;
  Application app("echod");
  const ServiceContext context{**reactor, os, {}, none, app};
  auto service = line.maker->make(line.maker_options, context);
  ASSERT_TRUE(service.has_value()) << service.error();
  EXPECT_EQ((*service)->name(), "echo on tcp:7");
  EXPECT_FALSE(line.maker->make(MakerOptions{}, context).has_value());
}

TEST(AppCommandLine, MakerOptionErrorsNameTheCommand) {
  expect_usage_error({"echo", "--bogus"}, "unknown option '--bogus'", "echod echo");
  expect_usage_error({"echo", "--port"}, "--port needs a value (ENDPOINT)", "echod echo");
  // A global option after the command is the command's, which does not have it.
  expect_usage_error({"echo", "--nodaemon"}, "unknown option '--nodaemon'", "echod echo");
}

// ---- the process name --------------------------------------------------------------------

std::string comm_of(fake::FakeSyscalls& os) {
  std::array<char, 16> name{};
  EXPECT_TRUE(os.prctl(PR_GET_NAME, reinterpret_cast<unsigned long>(name.data())));
  return name.data();
}

TEST(ProcessName, SetsTheNamePsShows) {
  fake::FakeSyscalls os;
  ASSERT_TRUE(set_process_name(os, "echod"));
  EXPECT_EQ(comm_of(os), "echod");
}

TEST(ProcessName, CutAtFifteenBytesNeverInsideACharacter) {
  fake::FakeSyscalls os;
  ASSERT_TRUE(set_process_name(os, "a-very-long-daemon-name"));
  EXPECT_EQ(comm_of(os), "a-very-long-dae");
  // "é" is two bytes, at 14 and 15: the cut falls before it, not between them.
  ASSERT_TRUE(set_process_name(os, "abcdefghijklmn\xC3\xA9z"));
  EXPECT_EQ(comm_of(os), "abcdefghijklmn");
}

TEST(ProcessName, EmptyIsRefusedWithoutACall) {
  fake::FakeSyscalls os;
  auto set = set_process_name(os, "");
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("process name: empty"));
  EXPECT_THAT(fake::to_string(os.transcript()), Not(HasSubstr("prctl")));
}

TEST(ProcessName, APrctlFailureNamesTheStep) {
  fake::FakeSyscalls os;
  os.fail_nth("prctl", 1, EINVAL);
  auto set = set_process_name(os, "echod");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().message, "prctl(PR_SET_NAME, echod): Invalid argument (EINVAL)");
  EXPECT_EQ(set.error().error_number(), EINVAL);
}

// ---- --profile -----------------------------------------------------------------------------

TEST(CpuProfiler, WritesTheProfileWhenStopped) {
  if (!cpu_profiler_available()) {
    CpuProfiler profiler("/tmp/unused.prof");
    auto started = profiler.start();
    ASSERT_FALSE(started);
    EXPECT_EQ(started.error(), "--profile /tmp/unused.prof: built without gperftools");
    return;
  }
  char dir[] = "/tmp/daemonkit_profile_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/run.prof";
  {
    CpuProfiler profiler(path);
    ASSERT_TRUE(profiler.start());
    EXPECT_TRUE(profiler.running());
    volatile unsigned long spin = 0;
    for (unsigned long i = 0; i < 20'000'000UL; ++i) spin = spin + i;
    profiler.stop();
    EXPECT_FALSE(profiler.running());
    profiler.stop();  // idempotent
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_GT(st.st_size, 0);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(CpuProfiler, ALibraryThatCannotBeLoadedFailsTheStartNamingIt) {
  if (!cpu_profiler_available()) GTEST_SKIP() << "built without gperftools' header";
  CpuProfiler missing("/tmp/unused.prof", "libdaemonkit-no-such-profiler.so.0");
  auto started = missing.start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error(), StartsWith("--profile /tmp/unused.prof: cannot load "
                                          "libdaemonkit-no-such-profiler.so.0: "));
  EXPECT_FALSE(missing.running());
  // A library without the profiler's entry points: libc loads, but has no ProfilerStart.
  CpuProfiler wrong("/tmp/unused.prof", "libc.so.6");
  auto refused = wrong.start();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(),
            "--profile /tmp/unused.prof: libc.so.6 has no ProfilerStart/ProfilerStop");
}

TEST(CpuProfiler, AFileThatCannotBeCreatedFailsTheStart) {
  CpuProfiler profiler("/nonexistent-dir/run.prof");
  auto started = profiler.start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error(), StartsWith("--profile /nonexistent-dir/run.prof: "));
  EXPECT_FALSE(profiler.running());
}

}  // namespace
}  // namespace daemonkit::core
