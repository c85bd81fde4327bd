#include "daemonkit/core/app/app_command_line.h"

#include <fmt/format.h>

#include <array>

#include "daemonkit/core/app/cpu_profiler.h"

namespace daemonkit::core {
namespace {

constexpr OptionSpec kHelpOption{"help", 'h', "", "Print this help and exit."};

// app::run's global options, in the order --help lists them: --help, the daemon options shared
// with `daemonkit run`, then app::run's own.
enum AppOption : std::size_t {
  kAppHelp,
  kFirstDaemonOption,
  kSyslog = kFirstDaemonOption + kDaemonOptionCount,
  kPrefix,
  kProfile,
  kReady,
};

constexpr std::array kAppOptions =
    join_options(std::array{kHelpOption}, daemon_option_specs(DaemonSubject::kApplication),
                 std::array{
                     OptionSpec{"syslog", 0, "", "Log to syslog, not to a file."},
                     OptionSpec{"prefix", 0, "NAME",
                                "syslog's ident (with --syslog). Default: the program's name."},
                     OptionSpec{"profile", 0, "FILE",
                                "Write a CPU profile of the whole run to FILE at shutdown "
                                "(gperftools; read it with google-pprof)."},
                     OptionSpec{"ready", 0, "",
                                "Tell the service manager over $NOTIFY_SOCKET: READY=1 once "
                                "started, STOPPING=1, and WATCHDOG=1 when $WATCHDOG_USEC is set."},
                 });

// How the program was invoked, without its directory: the name in messages and syslog's
// default ident.
std::string program_name(const std::vector<std::string>& args) {
  if (args.empty() || args.front().empty()) return "app";
  const std::string& path = args.front();
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  if (slash + 1 == path.size()) return "app";
  return path.substr(slash + 1);
}

AppExit usage_error(std::string_view where, std::string_view problem) {
  return AppExit{
      kUsageExit, "",
      fmt::format("{}: {}\nRun '{} --help' for more information.\n", where, problem, where)};
}

std::string maker_names(std::span<const ServiceMaker> makers) {
  std::vector<std::string_view> names;
  for (const ServiceMaker& maker : makers) names.push_back(maker.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// The global help: what twistd's --help shows, the options and then "Commands:".
std::string global_help(std::string_view program, std::span<const ServiceMaker> makers) {
  std::vector<HelpEntry> commands;
  commands.reserve(makers.size());
  for (const ServiceMaker& maker : makers) commands.push_back({maker.name, maker.description});
  const std::string footer =
      fmt::format("Run '{} COMMAND --help' for a command's options. Usage errors exit 2.", program);
  const CommandSpec spec{program,
                         "[OPTIONS] COMMAND [COMMAND OPTIONS]",
                         "Runs one of the services below, as a daemon unless --nodaemon.",
                         kAppOptions,
                         {},
                         commands,
                         footer};
  return help_text(spec);
}

}  // namespace

AppParsed parse_app_command_line(const std::vector<std::string>& args,
                                 std::span<const ServiceMaker> makers) {
  const std::string program = program_name(args);
  if (args.empty()) return usage_error(program, "a command is required");
  const CommandSpec global{program, "", "", kAppOptions, {}, {}, ""};
  auto read = read_options(global, args, 0);
  if (!read) return usage_error(program, read.error());

  AppCommandLine line;
  line.program = program;
  line.prefix = program;
  bool prefix_given = false;
  for (const OptionValue& given : read->values) {
    const auto index = static_cast<AppOption>(given.option - kAppOptions.data());
    if (index >= kFirstDaemonOption && index < kSyslog) {
      const auto which = static_cast<DaemonOption>(index - kFirstDaemonOption);
      if (auto problem = apply_daemon_option(which, given.value, line)) {
        return usage_error(program, *problem);
      }
      continue;
    }
    switch (index) {
      case kAppHelp:
        return AppExit{0, global_help(program, makers), ""};
      case kFirstDaemonOption:  // handled above, with every shared option
        break;
      case kSyslog:
        line.syslog = true;
        break;
      case kPrefix:
        if (given.value.empty()) return usage_error(program, "--prefix: a name is required");
        line.prefix = given.value;
        prefix_given = true;
        break;
      case kProfile:
        if (given.value.empty()) return usage_error(program, "--profile: a file is required");
        if (!cpu_profiler_available()) {
          return usage_error(program, "--profile: built without gperftools");
        }
        line.profile = given.value;
        break;
      case kReady:
        line.ready = true;
        break;
    }
  }

  if (auto problem = check_daemon_options(line)) return usage_error(program, *problem);
  if (line.logfile == "-" && !line.nodaemon) {
    return usage_error(program,
                       "--logfile -: a daemon has no standard output to log to; it needs "
                       "--nodaemon");
  }
  if (line.syslog && !line.logfile.empty()) {
    return usage_error(program, "--syslog and --logfile: log to one or the other");
  }
  if (prefix_given && !line.syslog) {
    return usage_error(program, "--prefix names the syslog ident; it needs --syslog");
  }

  if (read->rest == args.size()) {
    return AppExit{
        kUsageExit, "",
        fmt::format("{}: a command is required\n{}", program, global_help(program, makers))};
  }
  const std::string& command = args[read->rest];
  const ServiceMaker* maker = nullptr;
  for (const ServiceMaker& candidate : makers) {
    if (candidate.name == command) maker = &candidate;
  }
  if (maker == nullptr) {
    if (makers.empty()) return usage_error(program, fmt::format("'{}' is not a command", command));
    return usage_error(program,
                       fmt::format("'{}' is not a command ({})", command, maker_names(makers)));
  }

  // The maker's own table, with --help in front.
  std::vector<OptionSpec> options{kHelpOption};
  options.insert(options.end(), maker->options.begin(), maker->options.end());
  const std::string where = fmt::format("{} {}", program, maker->name);
  const CommandSpec spec{where, maker->usage, maker->description, options, {}, {}, ""};
  auto own = read_options(spec, args, read->rest);
  if (!own) return usage_error(where, own.error());
  for (const OptionValue& given : own->values) {
    if (given.option == &options.front()) return AppExit{0, help_text(spec), ""};
    line.maker_options.values.emplace_back(given.option->long_name, given.value);
  }
  line.maker_options.operands.assign(args.begin() + static_cast<std::ptrdiff_t>(own->rest),
                                     args.end());
  line.maker = maker;
  return line;
}

}  // namespace daemonkit::core
