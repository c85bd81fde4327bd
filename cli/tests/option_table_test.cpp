#include "daemonkit/cli/option_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <sstream>
#include <string>
#include <vector>

namespace daemonkit::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A table with every shape of option: flags and values, short and long-only, a name that is
// a prefix of another (pid, pidfile) and two that share a prefix (uid, umask).
constexpr std::array kOptions{
    OptionSpec{"nodaemon", 'n', "", "A flag with a short form."},
    OptionSpec{"euid", 0, "", "A long-only flag."},
    OptionSpec{"pidfile", 0, "PATH", "A long-only value."},
    OptionSpec{"pid", 0, "PID", "A value whose name begins another's."},
    OptionSpec{"rundir", 'd', "DIR", "A value with a short form."},
    OptionSpec{"uid", 'u', "USER", "Shares a prefix with umask."},
    OptionSpec{"umask", 0, "MODE", "Shares a prefix with uid."},
};

constexpr std::array kOperands{HelpEntry{"PROGRAM [ARGS...]", "What to run."}};

constexpr CommandSpec kCommand{
    "tool cmd", "[OPTIONS] PROGRAM", "Does a thing.", kOptions, kOperands, {}, "Footer text.",
};

// The words after the command's name, read; each value as "name=value" (a flag as "name").
struct Read {
  std::vector<std::string> given;
  std::vector<std::string> rest;
};

tl::expected<Read, std::string> read(std::vector<std::string> words) {
  words.insert(words.begin(), "cmd");
  auto read = read_options(kCommand, words, 0);
  if (!read) return tl::unexpected(read.error());
  Read out;
  for (const OptionValue& given : read->values) {
    out.given.push_back(given.option->value_name.empty()
                            ? std::string(given.option->long_name)
                            : std::string(given.option->long_name) + "=" + given.value);
  }
  out.rest.assign(words.begin() + static_cast<std::ptrdiff_t>(read->rest), words.end());
  return out;
}

std::string problem(std::vector<std::string> words) {
  auto result = read(std::move(words));
  if (result) {
    ADD_FAILURE() << "read without a problem";
    return "";
  }
  return result.error();
}

// ---- The forms a value may take ----------------------------------------------------------------

TEST(ReadOptions, ValueAsNextWordAfterEqualsOrAttached) {
  auto result = read({"--pidfile", "a.pid", "--rundir=/srv", "-uroot", "--umask", "=7", "p"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->given, ElementsAre("pidfile=a.pid", "rundir=/srv", "uid=root", "umask==7"));
  EXPECT_THAT(result->rest, ElementsAre("p"));
}

TEST(ReadOptions, ShortFlagsGroupAndTheLastMayTakeAValue) {
  auto grouped = read({"-nd", "/srv", "p"});
  ASSERT_TRUE(grouped) << grouped.error();
  EXPECT_THAT(grouped->given, ElementsAre("nodaemon", "rundir=/srv"));
  auto attached = read({"-nd/srv", "p"});
  ASSERT_TRUE(attached) << attached.error();
  EXPECT_THAT(attached->given, ElementsAre("nodaemon", "rundir=/srv"));
}

TEST(ReadOptions, AValueMayLookLikeAnOptionOrBeEmpty) {
  auto result = read({"--pidfile", "--nodaemon", "--rundir=", "p"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->given, ElementsAre("pidfile=--nodaemon", "rundir="));
}

TEST(ReadOptions, AUniquePrefixNamesItsOptionAndAnExactNameWinsOverLongerOnes) {
  auto result = read({"--no", "--run", "/", "--pid", "7", "--pidf", "x", "p"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->given, ElementsAre("nodaemon", "rundir=/", "pid=7", "pidfile=x"));
}

// ---- Where the options end
// -----------------------------------------------------------------------

TEST(ReadOptions, TheFirstWordThatIsNotAnOptionEndsThem) {
  auto result = read({"-n", "prog", "--pidfile", "x", "-n"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->given, ElementsAre("nodaemon"));
  EXPECT_THAT(result->rest, ElementsAre("prog", "--pidfile", "x", "-n"));
}

TEST(ReadOptions, DoubleDashEndsThemAndIsConsumedOnce) {
  auto result = read({"-n", "--", "--", "-n"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->rest, ElementsAre("--", "-n"));
}

TEST(ReadOptions, ALoneDashAndAnEmptyWordAreNotOptions) {
  auto dash = read({"-", "x"});
  ASSERT_TRUE(dash);
  EXPECT_THAT(dash->rest, ElementsAre("-", "x"));
  auto empty = read({"", "x"});
  ASSERT_TRUE(empty);
  EXPECT_THAT(empty->rest, ElementsAre("", "x"));
}

TEST(ReadOptions, NoWordsAtAllIsNoOptionsAndNothingLeft) {
  auto result = read({});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->given.empty());
  EXPECT_TRUE(result->rest.empty());
}

TEST(ReadOptions, RestCountsFromTheWholeArgumentList) {
  const std::vector<std::string> words{"tool", "--global", "cmd", "-n", "prog"};
  auto result = read_options(kCommand, words, 2);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(result->rest, 4U);
}

// ---- Problems, each worded ---------------------------------------------------------------------

TEST(ReadOptions, UnknownOptionsAreNamedAsTyped) {
  EXPECT_EQ(problem({"--frob", "p"}), "unknown option '--frob'");
  EXPECT_EQ(problem({"--frob=3", "p"}), "unknown option '--frob'");
  EXPECT_EQ(problem({"-x", "p"}), "unknown option '-x'");
  EXPECT_EQ(problem({"-nx", "p"}), "unknown option '-x'");
}

TEST(ReadOptions, AnAmbiguousPrefixListsWhatItCouldBe) {
  EXPECT_EQ(problem({"--u", "1", "p"}), "'--u' is ambiguous: it could be --uid, --umask");
  EXPECT_EQ(problem({"--u=1", "p"}), "'--u' is ambiguous: it could be --uid, --umask");
}

TEST(ReadOptions, AMissingValueNamesTheOptionAndWhatItWants) {
  EXPECT_EQ(problem({"--pidfile"}), "--pidfile needs a value (PATH)");
  EXPECT_EQ(problem({"--pidf"}), "--pidfile needs a value (PATH)");
  EXPECT_EQ(problem({"-d"}), "--rundir needs a value (DIR)");
  EXPECT_EQ(problem({"-nd"}), "--rundir needs a value (DIR)");
}

TEST(ReadOptions, AFlagGivenAValueIsAProblem) {
  EXPECT_EQ(problem({"--nodaemon=yes", "p"}), "--nodaemon takes no value");
  EXPECT_EQ(problem({"--eu=1", "p"}), "--euid takes no value");
}

TEST(ReadOptions, AnOptionGivenTwiceInAnyFormIsAProblem) {
  EXPECT_EQ(problem({"--pidfile=a", "--pidfile", "b", "p"}), "--pidfile is given twice");
  EXPECT_EQ(problem({"-n", "--nodaemon", "p"}), "--nodaemon is given twice");
  EXPECT_EQ(problem({"-nn", "p"}), "--nodaemon is given twice");
  EXPECT_EQ(problem({"-d/", "--run=/srv", "p"}), "--rundir is given twice");
}

// getopt_long keeps its place in libc's globals, half way through "-xn" here; the next read
// must start over rather than resume inside the old bundle.
TEST(ReadOptions, EachReadStartsFreshAfterOneThatFailedMidBundle) {
  EXPECT_EQ(problem({"-xn", "p"}), "unknown option '-x'");
  auto result = read({"-d", "/srv", "p"});
  ASSERT_TRUE(result) << result.error();
  EXPECT_THAT(result->given, ElementsAre("rundir=/srv"));
  EXPECT_THAT(result->rest, ElementsAre("p"));
}

// Any list of options, each written in any form it allows and never twice, reads back as
// exactly those options and values, in order, with the program's words left whole.
RC_GTEST_PROP(ReadOptions, EveryFormReadsBackTheSameOptionsInOrder, ()) {
  const auto picked =
      *rc::gen::unique<std::vector<std::size_t>>(rc::gen::inRange<std::size_t>(0, kOptions.size()));
  std::vector<std::string> words;
  std::vector<std::string> expected;
  for (std::size_t index : picked) {
    const OptionSpec& option = kOptions[index];
    const std::string name = option.long_name;
    // pid is a prefix of pidfile, so only its full name names it.
    const std::size_t shortest = name == "pid" ? name.size() : name == "pidfile" ? 4 : 3;
    const std::string typed =
        "--" + name.substr(0, *rc::gen::inRange<std::size_t>(shortest, name.size() + 1));
    if (option.value_name.empty()) {
      expected.push_back(name);
      words.push_back(option.short_name != 0 && *rc::gen::arbitrary<bool>()
                          ? std::string("-") + option.short_name
                          : typed);
      continue;
    }
    const std::string value =
        *rc::gen::oneOf(rc::gen::just(std::string("v")), rc::gen::just(std::string("--x")),
                        rc::gen::just(std::string("")), rc::gen::just(std::string("a b=c")));
    expected.push_back(name + "=" + value);
    switch (*rc::gen::inRange(0, option.short_name != 0 ? 4 : 2)) {
      case 0:
        words.push_back(typed);
        words.push_back(value);
        break;
      case 1:
        words.push_back(typed + "=" + value);
        break;
      case 2:
        words.push_back(std::string("-") + option.short_name);
        words.push_back(value);
        break;
      default:
        if (value.empty()) {  // -d with nothing attached takes the next word instead.
          words.push_back(std::string("-") + option.short_name);
          words.push_back(value);
        } else {
          words.push_back(std::string("-") + option.short_name + value);
        }
    }
  }
  const auto program = *rc::gen::container<std::vector<std::string>>(
      rc::gen::element<std::string>("prog", "-n", "--pidfile", "--", "x"));
  const bool with_double_dash =
      *rc::gen::arbitrary<bool>() || program.empty() || program.front().starts_with('-');
  if (with_double_dash) words.push_back("--");
  words.insert(words.end(), program.begin(), program.end());

  auto result = read(words);
  RC_ASSERT(result.has_value());
  RC_ASSERT(result->given == expected);
  RC_ASSERT(result->rest == program);
}

// ---- Help
// ----------------------------------------------------------------------------------------

TEST(HelpText, ShowsSummaryUsageOperandsEveryOptionAndFooter) {
  const std::string help = help_text(kCommand);
  EXPECT_THAT(help, testing::StartsWith("Does a thing.\nUsage: tool cmd [OPTIONS] PROGRAM\n"));
  EXPECT_THAT(help, HasSubstr("\nArguments:\n  PROGRAM [ARGS...]  What to run.\n"));
  EXPECT_THAT(help, HasSubstr("\n  -n, --nodaemon "));
  EXPECT_THAT(help, HasSubstr("\n      --euid "));
  EXPECT_THAT(help, HasSubstr("\n      --pidfile PATH "));
  EXPECT_THAT(help, HasSubstr("\n  -d, --rundir DIR "));
  EXPECT_THAT(help, Not(HasSubstr("Commands:")));
  EXPECT_THAT(help, testing::EndsWith("\nFooter text.\n"));
}

TEST(HelpText, LongTextWrapsUnderItsColumnWithinEightyColumns) {
  const std::string words =
      "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
      "fifteen sixteen seventeen eighteen nineteen twenty";
  const std::array options{OptionSpec{"verbose", 'v', "", words}};
  const std::array commands{HelpEntry{"a-command-name-longer-than-the-column", "Short."}};
  const CommandSpec spec{"tool", "", "S.", options, {}, commands, ""};
  const std::string help = help_text(spec);
  std::istringstream lines(help);
  std::string joined;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 80U) << line;
    if (line.starts_with("  -v, --verbose") ||
        (line.starts_with("                 ") && !line.ends_with("Short."))) {
      EXPECT_EQ(line.find_first_not_of(' ', line.starts_with("  -v") ? 15 : 0), 17U) << line;
      joined += line.substr(17) + " ";
    }
  }
  EXPECT_EQ(joined, words + " ");
  // A term too wide for the column gets a line of its own; its text goes on the next.
  EXPECT_THAT(help, HasSubstr("\n  a-command-name-longer-than-the-column\n"));
  EXPECT_THAT(help, HasSubstr("Short.\n"));
}

}  // namespace
}  // namespace daemonkit::cli
