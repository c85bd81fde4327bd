#include "daemonkit/core/daemon/log_file_rule.h"

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

// Root's files are the operator's; PROGRAM's own could have been written by PROGRAM anyway.
bool trusted_owner(uid_t owner, uid_t program_uid) { return owner == 0 || owner == program_uid; }

std::string owners(uid_t program_uid) {
  return program_uid == 0 ? "root's" : fmt::format("root's or uid {}'s", program_uid);
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "of an unknown file type";
}

}  // namespace

std::optional<std::string> log_file_refusal(const struct stat& opened, uid_t program_uid) {
  const mode_t mode = opened.st_mode;
  const uid_t owner = opened.st_uid;
  if (S_ISREG(mode)) {
    if (opened.st_nlink != 1) {
      return fmt::format("has {} hard links; refused (must have exactly 1)", opened.st_nlink);
    }
    if (!trusted_owner(owner, program_uid)) {
      return fmt::format("is owned by uid {}; refused (must be {})", owner, owners(program_uid));
    }
    return std::nullopt;
  }
  if (S_ISFIFO(mode)) {
    if (trusted_owner(owner, program_uid)) return std::nullopt;
    return fmt::format("is a FIFO owned by uid {}; refused (must be {})", owner,
                       owners(program_uid));
  }
  if (S_ISCHR(mode)) {
    if (owner == 0) return std::nullopt;
    return fmt::format("is a character device owned by uid {}; refused (must be root's)", owner);
  }
  return fmt::format("is {}; refused (must be a file, FIFO or character device)", kind_of(mode));
}

std::string log_file_symlink_refusal() { return "is a symbolic link; refused (never followed)"; }

}  // namespace daemonkit::core
