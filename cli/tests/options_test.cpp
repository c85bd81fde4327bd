#include "daemonkit/cli/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <fmt/format.h>

#include <string>
#include <vector>

#include "daemonkit/cli/version.h"

namespace daemonkit::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

Parsed parse(std::vector<std::string> words) {
  words.insert(words.begin(), "daemonkit");
  return parse_command_line(words);
}

RunOptions parse_run(std::vector<std::string> words) {
  words.insert(words.begin(), "run");
  Parsed parsed = parse(words);
  if (auto* early = std::get_if<EarlyExit>(&parsed)) {
    ADD_FAILURE() << "usage error: " << early->err;
    return {};
  }
  return std::get<RunOptions>(parsed);
}

EarlyExit parse_early(std::vector<std::string> words) {
  Parsed parsed = parse(std::move(words));
  if (auto* early = std::get_if<EarlyExit>(&parsed)) return *early;
  ADD_FAILURE() << "parsed a command where an early exit was expected";
  return {};
}

// ---- Help, version and the command itself ------------------------------------------------

TEST(CommandLine, VersionPrintsNameAndVersionAndExitsZero) {
  EarlyExit early = parse_early({"--version"});
  EXPECT_EQ(early.code, 0);
  EXPECT_EQ(early.out, std::string(kVersionText) + "\n");
  EXPECT_THAT(early.err, IsEmpty());
  EXPECT_THAT(early.out, StartsWith("daemonkit 0."));
}

TEST(CommandLine, HelpListsTheCommandsAndExitsZero) {
  EarlyExit early = parse_early({"--help"});
  EXPECT_EQ(early.code, 0);
  EXPECT_THAT(early.out, HasSubstr("run"));
  EXPECT_THAT(early.out, HasSubstr("stop"));
  EXPECT_THAT(early.out, HasSubstr("status"));
  EXPECT_THAT(early.err, IsEmpty());
}

TEST(CommandLine, EveryCommandHasHelp) {
  for (const char* command : {"run", "stop", "status"}) {
    for (const char* flag : {"--help", "-h"}) {
      EarlyExit early = parse_early({command, flag});
      EXPECT_EQ(early.code, 0) << command;
      EXPECT_THAT(early.out, HasSubstr(std::string("daemonkit ") + command)) << command;
      EXPECT_THAT(early.out, HasSubstr("--pidfile")) << command;
    }
  }
}

TEST(CommandLine, RunHelpNamesEveryOption) {
  EarlyExit early = parse_early({"run", "--help"});
  for (const char* option : {"--nodaemon", "--pidfile", "--rundir", "--chroot", "--umask", "--uid",
                             "--gid", "--euid", "--logfile", "--ready", "--timeout", "PROGRAM"}) {
    EXPECT_THAT(early.out, HasSubstr(option));
  }
}

TEST(CommandLine, NoCommandIsAUsageErrorWithHelpOnStderr) {
  EarlyExit early = parse_early({});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit: a command is required\n"));
  EXPECT_THAT(early.out, IsEmpty());
}

TEST(CommandLine, HelpOrVersionBeforeTheCommandAnswersAndIgnoresTheRest) {
  EXPECT_EQ(parse_early({"-h", "run", "--bogus"}).out, parse_early({"--help"}).out);
  EXPECT_EQ(parse_early({"--vers", "stop"}).out, std::string(kVersionText) + "\n");
}

TEST(CommandLine, UnknownGlobalOptionIsAUsageError) {
  EarlyExit early = parse_early({"--pidfile=x", "status"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_EQ(early.err,
            "daemonkit: unknown option '--pidfile'\n"
            "Run 'daemonkit --help' for more information.\n");
}

TEST(CommandLine, UnknownCommandIsAUsageError) {
  EarlyExit early = parse_early({"restart"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, HasSubstr("restart"));
  EXPECT_THAT(early.err, HasSubstr("Run 'daemonkit --help' for more information."));
}

TEST(CommandLine, UnknownOptionIsAUsageErrorNamingTheCommand) {
  EarlyExit early = parse_early({"run", "--bogus", "--", "/bin/true"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit run: "));
  EXPECT_THAT(early.err, HasSubstr("--bogus"));
  EXPECT_THAT(early.out, IsEmpty());
}

TEST(CommandLine, OptionMissingItsValueIsAUsageError) {
  EarlyExit early = parse_early({"stop", "--pidfile"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit stop: "));
}

// ---- run: defaults and each option -----------------------------------------------------

TEST(RunOptions, DefaultsAreTwistdsDaemonDefaults) {
  RunOptions options = parse_run({"--", "/bin/sleep", "60"});
  EXPECT_FALSE(options.nodaemon);
  EXPECT_EQ(options.pidfile, "");
  EXPECT_EQ(options.rundir, "/");
  EXPECT_EQ(options.chroot, "");
  EXPECT_FALSE(options.umask.has_value());
  EXPECT_EQ(options.effective_umask(), kDaemonUmask);
  EXPECT_FALSE(options.uid.has_value());
  EXPECT_FALSE(options.gid.has_value());
  EXPECT_FALSE(options.euid);
  EXPECT_EQ(options.logfile, "");
  EXPECT_EQ(options.ready, ReadyMode::kExec);
  EXPECT_FALSE(options.timeout.has_value());
  EXPECT_THAT(options.command, ElementsAre("/bin/sleep", "60"));
}

TEST(RunOptions, NodaemonKeepsTheUmaskUnlessGiven) {
  EXPECT_TRUE(parse_run({"--nodaemon", "--", "p"}).nodaemon);
  EXPECT_TRUE(parse_run({"-n", "--", "p"}).nodaemon);
  EXPECT_FALSE(parse_run({"-n", "--", "p"}).effective_umask().has_value());
  EXPECT_EQ(parse_run({"-n", "--umask", "022", "--", "p"}).effective_umask(), 022);
}

TEST(RunOptions, EachValueOptionInLongShortAndEqualsForms) {
  RunOptions options =
      parse_run({"--pidfile", "/run/x.pid", "--rundir",  "/srv",      "--chroot",
                 "/jail",     "--umask",    "027",       "--uid",     "nobody",
                 "--gid",     "nogroup",    "--euid",    "--logfile", "/var/log/x.log",
                 "--ready",   "notify",     "--timeout", "2.5",       "--",
                 "prog"});
  EXPECT_EQ(options.pidfile, "/run/x.pid");
  EXPECT_EQ(options.rundir, "/srv");
  EXPECT_EQ(options.chroot, "/jail");
  EXPECT_EQ(options.umask, 027);
  EXPECT_EQ(options.uid, (IdSpec{"nobody", std::nullopt}));
  EXPECT_EQ(options.gid, (IdSpec{"nogroup", std::nullopt}));
  EXPECT_TRUE(options.euid);
  EXPECT_EQ(options.logfile, "/var/log/x.log");
  EXPECT_EQ(options.ready, ReadyMode::kNotify);
  EXPECT_EQ(options.timeout, std::chrono::milliseconds(2500));

  RunOptions short_forms =
      parse_run({"-d", "/srv", "-u", "65534", "-g", "65534", "-l", "x.log", "--", "prog"});
  EXPECT_EQ(short_forms.rundir, "/srv");
  EXPECT_EQ(short_forms.uid, (IdSpec{"65534", 65534UL}));
  EXPECT_EQ(short_forms.gid, (IdSpec{"65534", 65534UL}));
  EXPECT_EQ(short_forms.logfile, "x.log");

  RunOptions equals = parse_run({"--pidfile=p.pid", "--ready=pipe", "--umask=0o077", "--", "x"});
  EXPECT_EQ(equals.pidfile, "p.pid");
  EXPECT_EQ(equals.ready, ReadyMode::kPipe);
  EXPECT_EQ(equals.umask, 077);
}

TEST(RunOptions, EachReadyMode) {
  EXPECT_EQ(parse_run({"--ready=exec", "--", "p"}).ready, ReadyMode::kExec);
  EXPECT_EQ(parse_run({"--ready=notify", "--", "p"}).ready, ReadyMode::kNotify);
  EXPECT_EQ(parse_run({"--ready=pipe", "--", "p"}).ready, ReadyMode::kPipe);
}

TEST(RunOptions, UnknownReadyModeIsAUsageError) {
  EarlyExit early = parse_early({"run", "--ready=socket", "--", "p"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_EQ(early.err,
            "daemonkit run: --ready: 'socket' is not one of exec, notify, pipe\n"
            "Run 'daemonkit run --help' for more information.\n");
}

// ---- run: where PROGRAM starts -----------------------------------------------------------

TEST(RunOptions, EverythingAfterDoubleDashIsProgramsEvenOurOptionNames) {
  RunOptions options = parse_run({"-n", "--", "prog", "--pidfile", "x", "--", "-n"});
  EXPECT_EQ(options.pidfile, "");
  EXPECT_THAT(options.command, ElementsAre("prog", "--pidfile", "x", "--", "-n"));
}

TEST(RunOptions, ProgramMayStartWithADash) {
  EXPECT_THAT(parse_run({"--", "-weird-name", "a"}).command, ElementsAre("-weird-name", "a"));
}

TEST(RunOptions, WithoutDoubleDashTheFirstNonOptionWordStartsProgram) {
  RunOptions options = parse_run({"--pidfile", "run", "-n", "/bin/prog", "-n", "--umask", "1"});
  EXPECT_EQ(options.pidfile, "run");
  EXPECT_TRUE(options.nodaemon);
  EXPECT_FALSE(options.umask.has_value());
  EXPECT_THAT(options.command, ElementsAre("/bin/prog", "-n", "--umask", "1"));
}

TEST(RunOptions, AttachedShortValueIsNotMistakenForProgram) {
  RunOptions options = parse_run({"-lout.log", "prog"});
  EXPECT_EQ(options.logfile, "out.log");
  EXPECT_THAT(options.command, ElementsAre("prog"));
}

TEST(RunOptions, MissingProgramIsAUsageError) {
  for (std::vector<std::string> words :
       {std::vector<std::string>{"run"}, {"run", "--"}, {"run", "-n", "--pidfile", "x"}}) {
    EarlyExit early = parse_early(words);
    EXPECT_EQ(early.code, kUsageExit);
    EXPECT_THAT(early.err, StartsWith("daemonkit run: PROGRAM is required"));
  }
}

// ---- run: umask --------------------------------------------------------------------------

TEST(Umask, ParsesOctalLikeTwistd) {
  EXPECT_EQ(parse_umask("123"), 0123);
  EXPECT_EQ(parse_umask("0123"), 0123);
  EXPECT_EQ(parse_umask("0070"), 070);
  EXPECT_EQ(parse_umask("0"), 0);
  EXPECT_EQ(parse_umask("777"), 0777);
  EXPECT_EQ(parse_umask("0o22"), 022);
  EXPECT_EQ(parse_umask("000000000022"), 022);
}

TEST(Umask, RejectsWhatIsNotAnOctalMode) {
  for (const char* bad : {"", "999", "8", "abcdef", "-1", "+22", "0_22", " 22", "22 ", "1000", "0o",
                          "0x22", "07777", "22.0", "0o1000"}) {
    EXPECT_FALSE(parse_umask(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(Umask, BadValueExitsTwoWithTheMessage) {
  EarlyExit early = parse_early({"run", "--umask=999", "--", "p"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_EQ(early.err,
            "daemonkit run: --umask: '999' is not an octal mode from 0 to 0777 (e.g. 022)\n"
            "Run 'daemonkit run --help' for more information.\n");
  EXPECT_THAT(early.out, IsEmpty());
}

RC_GTEST_PROP(Umask, EveryModeRoundTripsThroughOctalText, ()) {
  const auto mode = *rc::gen::inRange<unsigned>(0, 01000);
  const auto zeros = *rc::gen::inRange<int>(0, 4);
  const std::string text =
      std::string(static_cast<std::size_t>(zeros), '0') + fmt::format("{:o}", mode);
  RC_ASSERT(parse_umask(text) == std::optional<mode_t>(static_cast<mode_t>(mode)));
}

RC_GTEST_PROP(Umask, TextWithANonOctalCharacterIsRejected, ()) {
  const auto digits = *rc::gen::container<std::string>(rc::gen::elementOf(std::string("01234567")));
  const auto bad =
      *rc::gen::suchThat(rc::gen::arbitrary<char>(), [](char c) { return c < '0' || c > '7'; });
  const auto where = *rc::gen::inRange<std::size_t>(0, digits.size() + 1);
  std::string text = digits;
  text.insert(where, 1, bad);
  // "0o" is the one prefix that may carry a letter.
  RC_PRE(!(text.size() > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O') &&
           text.find_first_not_of("01234567", 2) == std::string::npos));
  RC_ASSERT(!parse_umask(text).has_value());
}

// ---- run: timeout, ids, conflicts --------------------------------------------------------

TEST(Timeout, ParsesSecondsWithFractions) {
  EXPECT_EQ(parse_timeout("2"), std::chrono::milliseconds(2000));
  EXPECT_EQ(parse_timeout("0.5"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_timeout("0.0001"), std::chrono::milliseconds(1));
  EXPECT_EQ(parse_timeout("86400"), std::chrono::milliseconds(86400000));
  EXPECT_EQ(parse_timeout(".25"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_timeout("3."), std::chrono::milliseconds(3000));
}

// Exact decimal arithmetic: 2.007 * 1000 is 2007.0000000000002 in binary floating point, which
// rounded up to 2008 ms.
TEST(Timeout, MillisecondsAreExactAndOnlyAFurtherFractionRoundsUp) {
  EXPECT_EQ(parse_timeout("2.007"), std::chrono::milliseconds(2007));
  EXPECT_EQ(parse_timeout("2.0070"), std::chrono::milliseconds(2007));
  EXPECT_EQ(parse_timeout("2.00701"), std::chrono::milliseconds(2008));
  EXPECT_EQ(parse_timeout("86399.999"), std::chrono::milliseconds(86399999));
  EXPECT_EQ(parse_timeout("00012.5"), std::chrono::milliseconds(12500));
}

TEST(Timeout, RejectsNonPositiveAndNonNumbers) {
  for (const char* bad : {"", "0", "0.0", "-1", "abc", "1s", "inf", "nan", "1e3", "0x10", "86401",
                          "86400.001", "1.2.3", ".", "99999999999999999999"}) {
    EXPECT_FALSE(parse_timeout(bad).has_value()) << bad;
  }
}

TEST(Timeout, BadRunTimeoutExitsTwo) {
  EarlyExit early = parse_early({"run", "--timeout", "soon", "--", "p"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit run: --timeout: 'soon' is not a positive number "
                                    "of seconds\n"));
}

TEST(IdSpec, NumbersAndNames) {
  EXPECT_EQ(parse_id("0"), (IdSpec{"0", 0UL}));
  EXPECT_EQ(parse_id("65534"), (IdSpec{"65534", 65534UL}));
  EXPECT_EQ(parse_id("nobody"), (IdSpec{"nobody", std::nullopt}));
  EXPECT_EQ(parse_id("1abc"), (IdSpec{"1abc", std::nullopt}));
  EXPECT_FALSE(parse_id("").has_value());
  // (uid_t)-1 means "leave unchanged" to setresuid, so it is only a name, never an id.
  EXPECT_EQ(parse_id("4294967295"), (IdSpec{"4294967295", std::nullopt}));
  EXPECT_EQ(parse_id("99999999999"), (IdSpec{"99999999999", std::nullopt}));
}

TEST(RunOptions, EuidWithoutUidOrGidIsAUsageError) {
  EarlyExit early = parse_early({"run", "--euid", "--", "p"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit run: --euid needs --uid or --gid\n"));
  EXPECT_TRUE(parse_run({"--euid", "-g", "1", "--", "p"}).euid);
}

TEST(RunOptions, NodaemonConflictsWithPipeReadinessAndTimeout) {
  EarlyExit pipe = parse_early({"run", "-n", "--ready=pipe", "--", "p"});
  EXPECT_EQ(pipe.code, kUsageExit);
  EXPECT_THAT(pipe.err, HasSubstr("--ready=pipe"));
  EXPECT_THAT(pipe.err, HasSubstr("--nodaemon"));
  EarlyExit timeout = parse_early({"run", "-n", "--timeout=3", "--", "p"});
  EXPECT_EQ(timeout.code, kUsageExit);
  EXPECT_THAT(timeout.err, HasSubstr("--timeout"));
  // notify is how a service manager's own socket reaches PROGRAM under Type=notify.
  EXPECT_EQ(parse_run({"-n", "--ready=notify", "--", "p"}).ready, ReadyMode::kNotify);
}

TEST(RunOptions, EmptyRundirIsAUsageError) {
  EXPECT_EQ(parse_early({"run", "--rundir=", "--", "p"}).code, kUsageExit);
}

TEST(RunOptions, RepeatedFlagOrOptionIsAUsageError) {
  EXPECT_EQ(parse_early({"run", "--pidfile=a", "--pidfile=b", "--", "p"}).err,
            "daemonkit run: --pidfile is given twice\n"
            "Run 'daemonkit run --help' for more information.\n");
  EXPECT_EQ(parse_early({"run", "-n", "--nodaemon", "--", "p"}).code, kUsageExit);
}

TEST(RunOptions, LongOptionsMayBeShortenedWhileTheyStayUnambiguous) {
  RunOptions options = parse_run({"--pid", "x.pid", "--nod", "--read=notify", "--", "p"});
  EXPECT_EQ(options.pidfile, "x.pid");
  EXPECT_TRUE(options.nodaemon);
  EXPECT_EQ(options.ready, ReadyMode::kNotify);
  EarlyExit ambiguous = parse_early({"run", "--u", "0", "--", "p"});
  EXPECT_EQ(ambiguous.code, kUsageExit);
  EXPECT_THAT(ambiguous.err,
              StartsWith("daemonkit run: '--u' is ambiguous: it could be --umask, --uid\n"));
}

TEST(RunOptions, GroupedShortFlagsAndValues) {
  RunOptions options = parse_run({"-nd", "/srv", "-u65534", "p"});
  EXPECT_TRUE(options.nodaemon);
  EXPECT_EQ(options.rundir, "/srv");
  EXPECT_EQ(options.uid, (IdSpec{"65534", 65534UL}));
  EXPECT_THAT(options.command, ElementsAre("p"));
}

// ---- stop and status ---------------------------------------------------------------------

TEST(StopOptions, PidfileIsRequiredAndTimeoutDefaultsToTenSeconds) {
  Parsed parsed = parse({"stop", "--pidfile", "/run/x.pid"});
  ASSERT_TRUE(std::holds_alternative<StopOptions>(parsed));
  EXPECT_EQ(std::get<StopOptions>(parsed).pidfile, "/run/x.pid");
  EXPECT_EQ(std::get<StopOptions>(parsed).timeout, std::chrono::seconds(10));

  Parsed timed = parse({"stop", "--pidfile=/p", "--timeout=0.25"});
  ASSERT_TRUE(std::holds_alternative<StopOptions>(timed));
  EXPECT_EQ(std::get<StopOptions>(timed).timeout, std::chrono::milliseconds(250));

  EarlyExit missing = parse_early({"stop"});
  EXPECT_EQ(missing.code, kUsageExit);
  EXPECT_THAT(missing.err, StartsWith("daemonkit stop: "));
  EXPECT_THAT(missing.err, HasSubstr("--pidfile"));
  EXPECT_EQ(parse_early({"stop", "--pidfile="}).code, kUsageExit);
  EXPECT_EQ(parse_early({"stop", "--pidfile=/p", "--timeout=-1"}).code, kUsageExit);
}

TEST(StatusOptions, PidfileIsRequired) {
  Parsed parsed = parse({"status", "--pidfile", "/run/x.pid"});
  ASSERT_TRUE(std::holds_alternative<StatusOptions>(parsed));
  EXPECT_EQ(std::get<StatusOptions>(parsed).pidfile, "/run/x.pid");
  EarlyExit missing = parse_early({"status"});
  EXPECT_EQ(missing.code, kUsageExit);
  EXPECT_THAT(missing.err, HasSubstr("--pidfile"));
}

TEST(StatusOptions, RunOptionsAreNotStatusOptions) {
  EarlyExit early = parse_early({"status", "--pidfile=/p", "--nodaemon"});
  EXPECT_EQ(early.code, kUsageExit);
  EXPECT_THAT(early.err, StartsWith("daemonkit status: "));
}

TEST(StopAndStatus, AWordBesidesTheOptionsIsAUsageError) {
  for (const char* command : {"stop", "status"}) {
    EarlyExit early = parse_early({command, "--pidfile", "/p", "extra"});
    EXPECT_EQ(early.code, kUsageExit);
    EXPECT_EQ(early.err, fmt::format("daemonkit {0}: unexpected argument 'extra'\n"
                                     "Run 'daemonkit {0} --help' for more information.\n",
                                     command));
  }
}

// One rule for the three commands (twistd's): an empty --pidfile means no PID file. run goes
// without one; stop and status need one, and refuse in the rule's words rather than as if the
// option were missing.
TEST(EmptyPidfile, MeansNoPidFileForRun) {
  EXPECT_EQ(parse_run({"--pidfile", "", "--", "p"}).pidfile, "");
  EXPECT_EQ(parse_run({"--pidfile=", "--", "p"}).pidfile, "");
  EXPECT_EQ(parse_run({"--pidfile", "", "--", "p"}), parse_run({"--", "p"}));
}

TEST(EmptyPidfile, IsAUsageErrorForStopAndStatusWhichNeedOne) {
  for (const char* command : {"stop", "status"}) {
    for (const std::vector<std::string>& words :
         {std::vector<std::string>{command, "--pidfile", ""},
          std::vector<std::string>{command, "--pidfile="}}) {
      EarlyExit early = parse_early(words);
      EXPECT_EQ(early.code, kUsageExit);
      EXPECT_EQ(early.err, fmt::format("daemonkit {0}: --pidfile '' means no PID file; {0} needs "
                                       "one\nRun 'daemonkit {0} --help' for more information.\n",
                                       command));
    }
  }
}

TEST(EmptyPidfile, DiffersFromAMissingPidfile) {
  for (const char* command : {"stop", "status"}) {
    EXPECT_EQ(parse_early({command}).err,
              fmt::format("daemonkit {0}: --pidfile: a path is required\n"
                          "Run 'daemonkit {0} --help' for more information.\n",
                          command));
  }
}

TEST(EmptyPidfile, RunsHelpSaysEmptyMeansNone) {
  std::string help;  // unwrapped: runs of spaces and newlines as one space
  for (char c : parse_early({"run", "--help"}).out) {
    if (c == '\n') c = ' ';
    if (c != ' ' || help.empty() || help.back() != ' ') help += c;
  }
  EXPECT_THAT(help, HasSubstr("Empty ('') or not given: no PID file."));
}

TEST(StatusOptions, TheWordRunAsAValueIsNotTheRunCommand) {
  Parsed parsed = parse({"status", "--pidfile", "run"});
  ASSERT_TRUE(std::holds_alternative<StatusOptions>(parsed));
  EXPECT_EQ(std::get<StatusOptions>(parsed).pidfile, "run");
}

}  // namespace
}  // namespace daemonkit::cli
