#include "daemonkit/fake/transcript.h"

#include <fmt/format.h>

#include "daemonkit/sys/result.h"

namespace daemonkit::fake {

std::string CallRecord::call_text() const {
  return fmt::format("{}({})", name, fmt::join(args, ", "));
}

std::string CallRecord::to_string() const {
  std::string text = fmt::format("[{}] {}", pid, call_text());
  if (!finished) {
    text += " = ?";
  } else if (error != 0) {
    text += " = -1 " + sys::errno_name(error);
  } else {
    text += " = " + value;
  }
  if (!injected_by.empty()) text += " [injected: " + injected_by + "]";
  if (!note.empty()) text += " [" + note + "]";
  return text;
}

std::string to_string(const Transcript& transcript) {
  std::string text;
  for (const auto& record : transcript) {
    text += record.to_string();
    text += '\n';
  }
  return text;
}

void PrintTo(const CallRecord& record, std::ostream* os) { *os << record.to_string(); }

}  // namespace daemonkit::fake
