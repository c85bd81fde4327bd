// log_file_refusal: which opened files may become PROGRAM's log, judged from their stat alone.
#include "daemonkit/core/daemon/log_file_rule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace daemonkit::core {
namespace {

constexpr uid_t kNobody = 65534;

struct stat file_of(mode_t type, uid_t owner, nlink_t links = 1) {
  struct stat st {};
  st.st_mode = type | 0644;
  st.st_uid = owner;
  st.st_nlink = links;
  return st;
}

TEST(LogFileRule, ARegularFileOfRootOrOfProgramsUserWithOneLinkIsAccepted) {
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 0), kNobody), std::nullopt);
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, kNobody), kNobody), std::nullopt);
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 0), 0), std::nullopt);
}

TEST(LogFileRule, ARegularFileWithMoreThanOneLinkIsRefusedWhoeverOwnsIt) {
  // A hard link to /etc/shadow planted in a directory the user owns: root's, with two names.
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 0, 2), kNobody),
            "has 2 hard links; refused (must have exactly 1)");
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, kNobody, 3), kNobody),
            "has 3 hard links; refused (must have exactly 1)");
  // Unlinked between the open and the fstat: no name left, and not one either.
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 0, 0), kNobody),
            "has 0 hard links; refused (must have exactly 1)");
}

TEST(LogFileRule, ARegularFileOfAnotherUserIsRefused) {
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 1001), kNobody),
            "is owned by uid 1001; refused (must be root's or uid 65534's)");
  EXPECT_EQ(log_file_refusal(file_of(S_IFREG, 1001), 0),
            "is owned by uid 1001; refused (must be root's)");
}

TEST(LogFileRule, AFifoMustBeRootsOrProgramsUsers) {
  EXPECT_EQ(log_file_refusal(file_of(S_IFIFO, 0), kNobody), std::nullopt);
  EXPECT_EQ(log_file_refusal(file_of(S_IFIFO, kNobody), kNobody), std::nullopt);
  EXPECT_EQ(log_file_refusal(file_of(S_IFIFO, 1001), kNobody),
            "is a FIFO owned by uid 1001; refused (must be root's or uid 65534's)");
}

TEST(LogFileRule, ACharacterDeviceMustBeRoots) {
  EXPECT_EQ(log_file_refusal(file_of(S_IFCHR, 0), kNobody), std::nullopt);  // /dev/null
  // A terminal's /dev/pts/N belongs to whoever logged in on it, even PROGRAM's user.
  EXPECT_EQ(log_file_refusal(file_of(S_IFCHR, kNobody), kNobody),
            "is a character device owned by uid 65534; refused (must be root's)");
}

TEST(LogFileRule, EverythingElseIsRefused) {
  EXPECT_EQ(log_file_refusal(file_of(S_IFDIR, 0), kNobody),
            "is a directory; refused (must be a file, FIFO or character device)");
  EXPECT_EQ(log_file_refusal(file_of(S_IFSOCK, 0), kNobody),
            "is a socket; refused (must be a file, FIFO or character device)");
  EXPECT_EQ(log_file_refusal(file_of(S_IFBLK, 0), kNobody),
            "is a block device; refused (must be a file, FIFO or character device)");
}

TEST(LogFileRule, ASymbolicLinkIsRefusedInSoManyWords) {
  EXPECT_EQ(log_file_symlink_refusal(), "is a symbolic link; refused (never followed)");
}

}  // namespace
}  // namespace daemonkit::core
