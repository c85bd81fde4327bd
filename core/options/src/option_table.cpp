#include "daemonkit/core/options/option_table.h"

#include <fmt/format.h>
#include <getopt.h>

#include <algorithm>

namespace daemonkit::core {
namespace {

// getopt_long's code for a long-only option: above every char a short option can be.
constexpr int kLongOnlyBase = 256;

int code_of(const CommandSpec& spec, std::size_t index) {
  const char short_name = spec.options[index].short_name;
  if (short_name != 0) return static_cast<unsigned char>(short_name);
  return kLongOnlyBase + static_cast<int>(index);
}

const OptionSpec* option_with_code(const CommandSpec& spec, int code) {
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    if (code_of(spec, i) == code) return &spec.options[i];
  }
  return nullptr;
}

// '+': stop at the first word that is not an option. ':': report a missing value as ':'
// rather than '?', so it can be told from an unknown option.
std::string short_options(const CommandSpec& spec) {
  std::string text = "+:";
  for (const OptionSpec& option : spec.options) {
    if (option.short_name == 0) continue;
    text += option.short_name;
    if (!option.value_name.empty()) text += ':';
  }
  return text;
}

std::vector<option> long_options(const CommandSpec& spec) {
  std::vector<option> table;
  table.reserve(spec.options.size() + 1);
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    const OptionSpec& spec_option = spec.options[i];
    table.push_back(option{spec_option.long_name,
                           spec_option.value_name.empty() ? no_argument : required_argument,
                           nullptr, code_of(spec, i)});
  }
  table.push_back(option{nullptr, 0, nullptr, 0});
  return table;
}

// getopt_long says '?' both for a name it does not know and for a prefix of several; which
// one it was is worth telling the user.
std::string unknown_long_option(const CommandSpec& spec, std::string_view word) {
  const std::string_view name = word.substr(2, word.find('=') - 2);
  std::vector<std::string> candidates;
  for (const OptionSpec& option : spec.options) {
    if (std::string_view(option.long_name).starts_with(name)) {
      candidates.push_back(option_name(option));
    }
  }
  if (candidates.size() >= 2) {
    return fmt::format("'--{}' is ambiguous: it could be {}", name, fmt::join(candidates, ", "));
  }
  return fmt::format("unknown option '--{}'", name);
}

std::string problem(const CommandSpec& spec, int code, const std::vector<char*>& argv) {
  const OptionSpec* known = option_with_code(spec, optopt);
  if (code == ':' && known != nullptr) {
    return fmt::format("{} needs a value ({})", option_name(*known), known->value_name);
  }
  // A known code with '?' is a long flag written with a value: --nodaemon=yes.
  if (known != nullptr) return fmt::format("{} takes no value", option_name(*known));
  if (optopt != 0) return fmt::format("unknown option '-{}'", static_cast<char>(optopt));
  // No code at all: a long option getopt_long did not recognise or could not tell apart, and
  // it has already stepped past that word.
  return unknown_long_option(spec, argv[static_cast<std::size_t>(optind) - 1]);
}

// Appends `text` from column `indent`, breaking between words to stay within `width`; each
// further line is indented to the same column.
void wrap_into(std::string& out, std::string_view text, std::size_t indent, std::size_t width) {
  std::size_t at = indent;
  bool first_word = true;
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (word.empty()) continue;
    if (!first_word && at + 1 + word.size() > width) {
      out += '\n';
      out.append(indent, ' ');
      at = indent;
    } else if (!first_word) {
      out += ' ';
      ++at;
    }
    out += word;
    at += word.size();
    first_word = false;
  }
  out += '\n';
}

struct HelpRow {
  std::string term;
  std::string_view text;
};

std::vector<HelpRow> rows_of(std::span<const HelpEntry> entries) {
  std::vector<HelpRow> rows;
  for (const HelpEntry& entry : entries) rows.push_back({std::string(entry.term), entry.text});
  return rows;
}

void section_into(std::string& out, std::string_view title, const std::vector<HelpRow>& rows) {
  if (rows.empty()) return;
  constexpr std::size_t kWidth = 80;  // A terminal's columns.
  constexpr std::size_t kMaxTerm = 26;
  std::size_t term_width = 0;
  for (const HelpRow& row : rows) term_width = std::max(term_width, row.term.size());
  term_width = std::min(term_width, kMaxTerm);
  const std::size_t indent = 2 + term_width + 2;
  out += fmt::format("\n{}:\n", title);
  for (const HelpRow& row : rows) {
    out += "  ";
    out += row.term;
    if (row.term.size() > term_width) {  // Too long to share its line with the text.
      out += '\n';
      out.append(indent, ' ');
    } else {
      out.append(indent - 2 - row.term.size(), ' ');
    }
    wrap_into(out, row.text, indent, kWidth);
  }
}

}  // namespace

std::string option_name(const OptionSpec& option) { return fmt::format("--{}", option.long_name); }

tl::expected<ReadOptions, std::string> read_options(const CommandSpec& spec,
                                                    const std::vector<std::string>& args,
                                                    std::size_t first) {
  // getopt_long takes char* const*, but with '+' it neither permutes nor writes the words.
  std::vector<char*> argv;
  argv.reserve(args.size() - first + 1);
  for (std::size_t i = first; i < args.size(); ++i) {
    argv.push_back(const_cast<char*>(args[i].c_str()));
  }
  argv.push_back(nullptr);
  const int argc = static_cast<int>(argv.size() - 1);
  const std::string shorts = short_options(spec);
  const std::vector<option> longs = long_options(spec);

  optind = 0;  // glibc: 0 starts over completely, forgetting any half-read bundle of flags.
  opterr = 0;  // No printing: the caller words and places the message.
  ReadOptions read;
  for (;;) {
    const int code = getopt_long(argc, argv.data(), shorts.c_str(), longs.data(), nullptr);
    if (code == -1) break;
    if (code == '?' || code == ':') return tl::unexpected(problem(spec, code, argv));
    const OptionSpec* option = option_with_code(spec, code);
    if (option == nullptr) return tl::unexpected(fmt::format("unknown option code {}", code));
    const bool repeated = std::any_of(read.values.begin(), read.values.end(),
                                      [&](const OptionValue& v) { return v.option == option; });
    if (repeated) return tl::unexpected(fmt::format("{} is given twice", option_name(*option)));
    read.values.push_back(OptionValue{option, optarg != nullptr ? optarg : ""});
  }
  read.rest = first + static_cast<std::size_t>(optind);
  return read;
}

std::string help_text(const CommandSpec& spec) {
  std::string out = fmt::format("{}\nUsage: {} {}\n", spec.summary, spec.name, spec.usage);
  section_into(out, "Arguments", rows_of(spec.operands));
  std::vector<HelpRow> options;
  for (const OptionSpec& option : spec.options) {
    std::string term = option.short_name != 0 ? fmt::format("-{}, ", option.short_name) : "    ";
    term += option_name(option);
    if (!option.value_name.empty()) term += fmt::format(" {}", option.value_name);
    options.push_back({std::move(term), option.help});
  }
  section_into(out, "Options", options);
  section_into(out, "Commands", rows_of(spec.commands));
  if (!spec.footer.empty()) out += fmt::format("\n{}\n", spec.footer);
  return out;
}

}  // namespace daemonkit::core
