#include "flags_text.h"

#include <fcntl.h>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {

std::string open_flags_text(int flags) {
  std::string text;
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      text = "O_RDONLY";
      break;
    case O_WRONLY:
      text = "O_WRONLY";
      break;
    case O_RDWR:
      text = "O_RDWR";
      break;
    default:
      text = "O_ACCMODE";
      break;
  }
  const unsigned rest = static_cast<unsigned>(flags & ~O_ACCMODE);
  if (rest == 0) return text;
  return text + "|" +
         flags_text(rest, {{O_CREAT, "O_CREAT"},
                           {O_EXCL, "O_EXCL"},
                           {O_NOCTTY, "O_NOCTTY"},
                           {O_TRUNC, "O_TRUNC"},
                           {O_APPEND, "O_APPEND"},
                           {O_NONBLOCK, "O_NONBLOCK"},
                           {O_DIRECTORY, "O_DIRECTORY"},
                           {O_NOFOLLOW, "O_NOFOLLOW"},
                           {O_CLOEXEC, "O_CLOEXEC"},
                           {kLargefile, "O_LARGEFILE"},
                           {O_SYNC, "O_SYNC"},
                           {O_PATH, "O_PATH"}});
}

std::string flags_text(unsigned flags, std::initializer_list<FlagName> names) {
  std::string text;
  for (const FlagName& flag : names) {
    // O_SYNC includes O_DSYNC's bit: a name matches only when all of its bits are set.
    if (flag.bit == 0 || (flags & flag.bit) != flag.bit) continue;
    if (!text.empty()) text += '|';
    text += flag.name;
    flags &= ~flag.bit;
  }
  if (flags != 0) text += (text.empty() ? "" : "|") + fmt::format("{:#x}", flags);
  return text.empty() ? "0" : text;
}

}  // namespace daemonkit::fake::detail
