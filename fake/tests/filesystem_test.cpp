// The fake kernel's in-memory filesystem: open flags, permissions, symlinks, the calls that
// change the tree, stat, flock, chdir/chroot/getcwd.
#include <sys/file.h>
#include <sys/sysmacros.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using testing_support::read_all;

FakeSyscallsOptions user(uid_t uid, gid_t gid = 100) {
  FakeSyscallsOptions options;
  options.uid = uid;
  options.gid = gid;
  return options;
}

TEST(FakeOpen, CreatesWithModeMaskedByUmaskAndOwnedByTheCaller) {
  FakeSyscalls os(user(1000, 100));
  os.make_dir("/home/u", 0755, 1000, 100);
  os.umask(027);
  const int fd = *os.open("/home/u/file", O_WRONLY | O_CREAT, 0666);
  auto st = *os.fstat(fd);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 100u);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST(FakeOpen, MissingFileWithoutOCreatIsEnoent) {
  FakeSyscalls os;
  EXPECT_EQ(os.open("/tmp/none", O_RDONLY, 0).error().code, ENOENT);
  EXPECT_EQ(os.open("/none/x", O_WRONLY | O_CREAT, 0644).error().code, ENOENT);
  EXPECT_EQ(os.open("", O_RDONLY, 0).error().code, ENOENT);
}

TEST(FakeOpen, OExclRefusesAnExistingFileOrSymlink) {
  FakeSyscalls os;
  os.write_file("/tmp/f", "x");
  os.make_symlink("/tmp/nowhere", "/tmp/dangling");
  EXPECT_EQ(os.open("/tmp/f", O_WRONLY | O_CREAT | O_EXCL, 0644).error().code, EEXIST);
  EXPECT_EQ(os.open("/tmp/dangling", O_WRONLY | O_CREAT | O_EXCL, 0644).error().code, EEXIST);
  EXPECT_TRUE(os.open("/tmp/g", O_WRONLY | O_CREAT | O_EXCL, 0644));
}

TEST(FakeOpen, OCreatThroughADanglingSymlinkCreatesTheTarget) {
  FakeSyscalls os;
  os.make_symlink("/tmp/target", "/tmp/link");
  ASSERT_TRUE(os.open("/tmp/link", O_WRONLY | O_CREAT, 0644));
  EXPECT_EQ(os.read_file("/tmp/target"), "");
}

TEST(FakeOpen, OTruncEmptiesAndOAppendWritesAtTheEnd) {
  FakeSyscalls os;
  os.write_file("/tmp/f", "old contents");
  const int fd = *os.open("/tmp/f", O_WRONLY | O_TRUNC, 0);
  ASSERT_TRUE(os.write(fd, "new", 3));
  EXPECT_EQ(os.read_file("/tmp/f"), "new");
  const int a = *os.open("/tmp/f", O_WRONLY | O_APPEND, 0);
  const int b = *os.open("/tmp/f", O_WRONLY, 0);
  ASSERT_TRUE(os.write(b, "N", 1));
  ASSERT_TRUE(os.write(a, "+", 1));
  EXPECT_EQ(os.read_file("/tmp/f"), "New+");
}

TEST(FakeOpen, ONofollowOnAFinalSymlinkIsEloop) {
  FakeSyscalls os;
  os.write_file("/tmp/real", "x");
  os.make_symlink("/tmp/real", "/tmp/link");
  EXPECT_EQ(os.open("/tmp/link", O_RDONLY | O_NOFOLLOW, 0).error().code, ELOOP);
  EXPECT_EQ(os.open("/tmp/link", O_RDONLY | O_NOFOLLOW | O_CREAT, 0644).error().code, ELOOP);
  // Only the last component is protected.
  os.make_symlink("/tmp", "/tmpl");
  EXPECT_TRUE(os.open("/tmpl/real", O_RDONLY | O_NOFOLLOW, 0));
}

TEST(FakeOpen, SymlinkLoopsStopAtFortyWithEloop) {
  FakeSyscalls os;
  os.make_symlink("/tmp/b", "/tmp/a");
  os.make_symlink("/tmp/a", "/tmp/b");
  EXPECT_EQ(os.open("/tmp/a", O_RDONLY, 0).error().code, ELOOP);
  // A chain of 40 links resolves; 41 does not.
  os.write_file("/chain/end", "ok");
  os.make_symlink("/chain/end", "/chain/l0");
  for (int i = 1; i <= 40; ++i) {
    os.make_symlink("/chain/l" + std::to_string(i - 1), "/chain/l" + std::to_string(i));
  }
  EXPECT_TRUE(os.open("/chain/l39", O_RDONLY, 0));
  EXPECT_EQ(os.open("/chain/l40", O_RDONLY, 0).error().code, ELOOP);
}

TEST(FakeOpen, RelativeSymlinksResolveFromTheirDirectory) {
  FakeSyscalls os;
  os.write_file("/srv/data/file", "content");
  os.make_symlink("../data/file", "/srv/links/file");
  const int fd = *os.open("/srv/links/file", O_RDONLY, 0);
  EXPECT_EQ(read_all(os, fd), "content");
}

TEST(FakeOpen, DirectoryRules) {
  FakeSyscalls os;
  os.write_file("/tmp/f", "");
  EXPECT_EQ(os.open("/tmp", O_WRONLY, 0).error().code, EISDIR);
  EXPECT_EQ(os.open("/tmp", O_RDONLY | O_CREAT, 0644).error().code, EISDIR);
  EXPECT_EQ(os.open("/tmp/f", O_RDONLY | O_DIRECTORY, 0).error().code, ENOTDIR);
  EXPECT_EQ(os.open("/tmp/f/", O_RDONLY, 0).error().code, ENOTDIR);
  EXPECT_EQ(os.open("/tmp/f/x", O_RDONLY, 0).error().code, ENOTDIR);
  EXPECT_EQ(os.open("/tmp/new/", O_RDONLY | O_CREAT, 0644).error().code, EISDIR);
  EXPECT_EQ(os.open("/tmp/n", O_RDONLY | O_CREAT | O_DIRECTORY, 0644).error().code, EINVAL);
}

TEST(FakeOpen, OverlongNamesAreEnametoolong) {
  FakeSyscalls os;
  const std::string component(256, 'a');
  EXPECT_EQ(os.open(("/tmp/" + component).c_str(), O_RDONLY, 0).error().code, ENAMETOOLONG);
  const std::string path(5000, '/');
  EXPECT_EQ(os.open(path.c_str(), O_RDONLY, 0).error().code, ENAMETOOLONG);
}

TEST(FakeOpen, OpenatResolvesRelativeToTheDirectory) {
  FakeSyscalls os;
  os.write_file("/srv/app/conf", "c");
  const int dir = *os.open("/srv/app", O_RDONLY | O_DIRECTORY, 0);
  const int fd = *os.openat(dir, "conf", O_RDONLY, 0);
  EXPECT_EQ(read_all(os, fd), "c");
  EXPECT_EQ(os.openat(99, "conf", O_RDONLY, 0).error().code, EBADF);
  EXPECT_TRUE(os.openat(99, "/srv/app/conf", O_RDONLY, 0));
  EXPECT_EQ(os.openat(fd, "x", O_RDONLY, 0).error().code, ENOTDIR);
}

TEST(FakePermissions, OwnerGroupAndOtherBitsDecide) {
  FakeSyscalls os(user(1000, 100));
  os.write_file("/srv/owner", "", 0600, 1000, 0);
  os.write_file("/srv/group", "", 0060, 0, 100);
  os.write_file("/srv/other", "", 0004, 0, 0);
  os.write_file("/srv/none", "", 0640, 0, 0);
  EXPECT_TRUE(os.open("/srv/owner", O_RDWR, 0));
  EXPECT_TRUE(os.open("/srv/group", O_RDWR, 0));
  EXPECT_TRUE(os.open("/srv/other", O_RDONLY, 0));
  EXPECT_EQ(os.open("/srv/other", O_WRONLY, 0).error().code, EACCES);
  EXPECT_EQ(os.open("/srv/none", O_RDONLY, 0).error().code, EACCES);
  // The owner class applies even when it grants less than "other".
  os.write_file("/srv/mine", "", 0066, 1000, 0);
  EXPECT_EQ(os.open("/srv/mine", O_RDONLY, 0).error().code, EACCES);
}

TEST(FakePermissions, SupplementaryGroupsCount) {
  FakeSyscallsOptions options = user(1000, 100);
  options.groups = {200};
  FakeSyscalls os(options);
  os.write_file("/srv/g", "", 0040, 0, 200);
  EXPECT_TRUE(os.open("/srv/g", O_RDONLY, 0));
}

TEST(FakePermissions, SearchPermissionIsNeededOnEveryDirectory) {
  FakeSyscalls os(user(1000));
  os.make_dir("/secret", 0700);
  os.write_file("/secret/file", "", 0644);
  EXPECT_EQ(os.open("/secret/file", O_RDONLY, 0).error().code, EACCES);
  EXPECT_EQ(os.stat("/secret/file").error().code, EACCES);
}

TEST(FakePermissions, CreatingNeedsWriteOnTheDirectory) {
  FakeSyscalls os(user(1000));
  EXPECT_EQ(os.open("/etc/new", O_WRONLY | O_CREAT, 0644).error().code, EACCES);
  EXPECT_EQ(os.mkdir("/etc/newdir", 0755).error().code, EACCES);
  EXPECT_TRUE(os.open("/tmp/new", O_WRONLY | O_CREAT, 0644));
}

TEST(FakePermissions, RootBypassesReadWriteButNotAMissingExecuteBit) {
  FakeSyscalls os;
  os.write_file("/srv/locked", "", 0000, 1000, 1000);
  EXPECT_TRUE(os.open("/srv/locked", O_RDWR, 0));
  os.make_dir("/srv/closed", 0000, 1000, 1000);
  EXPECT_TRUE(os.open("/srv/closed", O_RDONLY | O_DIRECTORY, 0));
  char* argv[] = {nullptr};
  EXPECT_EQ(os.execve("/srv/locked", argv, argv).error().code, EACCES);
}

TEST(FakePermissions, StickyDirectoriesProtectOthersFiles) {
  FakeSyscalls os(user(1000));
  os.write_file("/tmp/theirs", "", 0666, 2000, 2000);
  EXPECT_EQ(os.unlink("/tmp/theirs").error().code, EPERM);
  EXPECT_EQ(os.rename("/tmp/theirs", "/tmp/mine").error().code, EPERM);
  ASSERT_TRUE(os.open("/tmp/own", O_WRONLY | O_CREAT, 0644));
  EXPECT_TRUE(os.unlink("/tmp/own"));
}

TEST(FakeTree, UnlinkRemovesTheNameButOpenDescriptionsKeepTheData) {
  FakeSyscalls os;
  os.write_file("/tmp/f", "data");
  const int fd = *os.open("/tmp/f", O_RDONLY, 0);
  ASSERT_TRUE(os.unlink("/tmp/f"));
  EXPECT_FALSE(os.stat_path("/tmp/f"));
  EXPECT_EQ(os.fstat(fd)->st_nlink, 0u);
  EXPECT_EQ(read_all(os, fd), "data");
  EXPECT_EQ(os.unlink("/tmp/f").error().code, ENOENT);
  EXPECT_EQ(os.unlink("/tmp").error().code, EISDIR);
  EXPECT_EQ(os.unlink("/").error().code, EISDIR);
}

TEST(FakeTree, RenameMovesAndReplaces) {
  FakeSyscalls os;
  os.write_file("/tmp/a", "A");
  os.write_file("/tmp/b", "B");
  ASSERT_TRUE(os.rename("/tmp/a", "/tmp/b"));
  EXPECT_EQ(os.read_file("/tmp/b"), "A");
  EXPECT_FALSE(os.stat_path("/tmp/a"));
  EXPECT_EQ(os.rename("/tmp/a", "/tmp/c").error().code, ENOENT);
  ASSERT_TRUE(os.rename("/tmp/b", "/tmp/b"));
  EXPECT_EQ(os.read_file("/tmp/b"), "A");
}

TEST(FakeTree, RenameOfDirectoriesFollowsLinux) {
  FakeSyscalls os;
  os.make_dir("/d/sub");
  os.make_dir("/e");
  os.make_dir("/full/x");
  os.write_file("/f", "");
  EXPECT_EQ(os.rename("/d", "/f").error().code, ENOTDIR);
  EXPECT_EQ(os.rename("/f", "/e").error().code, EISDIR);
  EXPECT_EQ(os.rename("/d", "/d/sub/inside").error().code, EINVAL);
  EXPECT_EQ(os.rename("/e", "/full").error().code, ENOTEMPTY);
  EXPECT_EQ(os.rename("/full/x", "/full").error().code, ENOTEMPTY) << "replacing an ancestor";
  ASSERT_TRUE(os.rename("/d", "/e"));
  EXPECT_TRUE(os.stat_path("/e/sub"));
  ASSERT_TRUE(os.chdir("/e/sub"));
  EXPECT_EQ(*os.getcwd(), "/e/sub");
}

TEST(FakeTree, MkdirAndRmdir) {
  FakeSyscalls os;
  os.umask(022);
  ASSERT_TRUE(os.mkdir("/srv", 0777));
  EXPECT_EQ(os.stat_path("/srv")->st_mode & 07777, 0755u);
  // "/" links: its own "." and "..", and the ".." of dev proc tmp run etc var srv.
  EXPECT_EQ(os.stat_path("/")->st_nlink, 2u + 7u);
  EXPECT_EQ(os.mkdir("/srv", 0755).error().code, EEXIST);
  EXPECT_EQ(os.mkdir("/", 0755).error().code, EEXIST);
  os.write_file("/srv/file", "");
  EXPECT_EQ(os.mkdir("/srv/file/x", 0755).error().code, ENOTDIR);
  EXPECT_EQ(os.rmdir("/srv").error().code, ENOTEMPTY);
  EXPECT_EQ(os.rmdir("/srv/file").error().code, ENOTDIR);
  EXPECT_EQ(os.rmdir("/srv/.").error().code, EINVAL);
  EXPECT_EQ(os.rmdir("/srv/..").error().code, ENOTEMPTY);
  EXPECT_EQ(os.rmdir("/").error().code, EBUSY);
  ASSERT_TRUE(os.unlink("/srv/file"));
  ASSERT_TRUE(os.rmdir("/srv"));
  EXPECT_FALSE(os.stat_path("/srv"));
}

TEST(FakeTree, SymlinkAndLstat) {
  FakeSyscalls os;
  os.write_file("/tmp/target", "abc");
  ASSERT_TRUE(os.symlink("/tmp/target", "/tmp/link"));
  EXPECT_EQ(os.symlink("/x", "/tmp/link").error().code, EEXIST);
  EXPECT_EQ(os.symlink("", "/tmp/l2").error().code, ENOENT);
  auto l = *os.lstat("/tmp/link");
  EXPECT_TRUE(S_ISLNK(l.st_mode));
  EXPECT_EQ(l.st_size, 11);
  auto s = *os.stat("/tmp/link");
  EXPECT_TRUE(S_ISREG(s.st_mode));
  EXPECT_EQ(s.st_size, 3);
  EXPECT_EQ(s.st_ino, os.stat("/tmp/target")->st_ino);
  EXPECT_EQ(os.stat("/tmp/target/").error().code, ENOTDIR);
}

TEST(FakeTree, AHardLinkIsASecondNameForTheSameInode) {
  FakeSyscalls os;
  os.write_file("/etc/shadow", "root:x\n", 0640);
  os.make_hard_link("/etc/shadow", "/home/u/app.log");
  const auto original = *os.stat_path("/etc/shadow");
  const auto linked = *os.stat_path("/home/u/app.log");
  EXPECT_EQ(linked.st_ino, original.st_ino);
  EXPECT_EQ(linked.st_nlink, 2u);
  EXPECT_EQ(original.st_nlink, 2u);
  // Writing through one name changes what the other reads.
  const int fd = *os.open("/home/u/app.log", O_WRONLY | O_APPEND, 0);
  EXPECT_EQ(os.fstat(fd)->st_nlink, 2u);
  ASSERT_EQ(*os.write(fd, "more\n", 5), 5u);
  EXPECT_EQ(os.read_file("/etc/shadow"), "root:x\nmore\n");
  // Unlinking one name leaves the other, with one link.
  ASSERT_TRUE(os.unlink("/home/u/app.log"));
  EXPECT_EQ(os.stat_path("/etc/shadow")->st_nlink, 1u);
  EXPECT_EQ(os.fstat(fd)->st_nlink, 1u);
}

TEST(FakeTree, AHardLinkToASymlinkLinksTheSymlinkItself) {
  FakeSyscalls os;
  os.write_file("/etc/target", "t");
  os.make_symlink("/etc/target", "/etc/link");
  os.make_hard_link("/etc/link", "/tmp/second");
  EXPECT_TRUE(S_ISLNK(os.stat_path("/tmp/second")->st_mode));
  EXPECT_EQ(os.stat_path("/etc/target")->st_nlink, 1u);
}

TEST(FakeTree, StatReportsDevicesAndDistinctInodes) {
  FakeSyscalls os;
  auto null = *os.stat("/dev/null");
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  os.write_file("/a", "");
  os.write_file("/b", "");
  EXPECT_NE(os.stat("/a")->st_ino, os.stat("/b")->st_ino);
  EXPECT_EQ(os.stat("/a")->st_dev, os.stat("/b")->st_dev);
  EXPECT_NE(os.stat("/a")->st_dev, null.st_dev);
}

TEST(FakeTree, DevNullSwallowsWritesAndReadsEmpty) {
  FakeSyscalls os;
  const int fd = *os.open("/dev/null", O_RDWR | O_TRUNC, 0);
  EXPECT_EQ(*os.write(fd, "abc", 3), 3u);
  char c;
  EXPECT_EQ(*os.read(fd, &c, 1), 0u);
  EXPECT_EQ(os.fsync(fd).error().code, EINVAL);
}

TEST(FakeTree, FtruncateAndFsyncOnFiles) {
  FakeSyscalls os;
  os.write_file("/tmp/f", "abcdef");
  const int fd = *os.open("/tmp/f", O_RDWR, 0);
  ASSERT_TRUE(os.ftruncate(fd, 2));
  EXPECT_EQ(os.read_file("/tmp/f"), "ab");
  ASSERT_TRUE(os.ftruncate(fd, 4));
  EXPECT_EQ(os.read_file("/tmp/f"), std::string("ab\0\0", 4));
  EXPECT_TRUE(os.fsync(fd));
  EXPECT_EQ(os.ftruncate(fd, -1).error().code, EINVAL);
  const int ro = *os.open("/tmp/f", O_RDONLY, 0);
  EXPECT_EQ(os.ftruncate(ro, 0).error().code, EINVAL);
  EXPECT_EQ(os.write(ro, "x", 1).error().code, EBADF);
  char c;
  EXPECT_EQ(os.read(*os.open("/tmp/f", O_WRONLY, 0), &c, 1).error().code, EBADF);
}

TEST(FakeTree, ChmodNeedsOwnershipAndDropsForeignSetgid) {
  FakeSyscalls os(user(1000, 100));
  os.write_file("/srv/mine", "", 0644, 1000, 300);
  os.write_file("/srv/theirs", "", 0644, 2000, 2000);
  EXPECT_EQ(os.chmod("/srv/theirs", 0600).error().code, EPERM);
  ASSERT_TRUE(os.chmod("/srv/mine", 02755));
  EXPECT_EQ(os.stat_path("/srv/mine")->st_mode & 07777, 0755u);
  EXPECT_EQ(os.chmod("/srv/none", 0600).error().code, ENOENT);
}

TEST(FakeTree, FchmodFollowsChmodsRulesOnTheOpenFile) {
  FakeSyscalls os(user(1000, 100));
  os.write_file("/srv/mine", "", 0644, 1000, 300);
  os.write_file("/srv/theirs", "", 0666, 2000, 2000);
  const int mine = *os.open("/srv/mine", O_WRONLY, 0);
  ASSERT_TRUE(os.fchmod(mine, 02750));
  // No set-group-ID for a group the caller is not in, as chmod.
  EXPECT_EQ(os.stat_path("/srv/mine")->st_mode & 07777, 0750u);
  const int theirs = *os.open("/srv/theirs", O_WRONLY, 0);
  EXPECT_EQ(os.fchmod(theirs, 0600).error().code, EPERM);
  EXPECT_EQ(os.fchmod(99, 0600).error().code, EBADF);
}

TEST(FakeTree, ChownRules) {
  FakeSyscallsOptions options = user(1000, 100);
  options.groups = {200};
  FakeSyscalls os(options);
  os.write_file("/srv/mine", "", 04755, 1000, 100);
  EXPECT_EQ(os.chown("/srv/mine", 2000, -1).error().code, EPERM);
  EXPECT_EQ(os.chown("/srv/mine", -1, 300).error().code, EPERM);
  ASSERT_TRUE(os.chown("/srv/mine", 1000, 200));
  auto st = *os.stat("/srv/mine");
  EXPECT_EQ(st.st_gid, 200u);
  EXPECT_EQ(st.st_mode & S_ISUID, 0u) << "chown clears set-user-ID";
  os.write_file("/srv/theirs", "", 0644, 2000, 100);
  EXPECT_EQ(os.chown("/srv/theirs", -1, 100).error().code, EPERM);

  FakeSyscalls root;
  root.write_file("/srv/f", "", 0644);
  ASSERT_TRUE(root.chown("/srv/f", 65534, 65534));
  EXPECT_EQ(root.stat_path("/srv/f")->st_uid, 65534u);
}

TEST(FakeTree, ChdirGetcwdAndRelativePaths) {
  FakeSyscalls os;
  os.write_file("/srv/app/conf", "c");
  ASSERT_TRUE(os.chdir("/srv/app"));
  EXPECT_EQ(*os.getcwd(), "/srv/app");
  EXPECT_EQ(read_all(os, *os.open("conf", O_RDONLY, 0)), "c");
  ASSERT_TRUE(os.chdir(".."));
  EXPECT_EQ(*os.getcwd(), "/srv");
  EXPECT_EQ(os.chdir("app/conf").error().code, ENOTDIR);
  EXPECT_EQ(os.chdir("missing").error().code, ENOENT);
  ASSERT_TRUE(os.chdir("/"));
  ASSERT_TRUE(os.chdir(".."));
  EXPECT_EQ(*os.getcwd(), "/");
}

TEST(FakeTree, GetcwdOfARemovedDirectoryIsEnoent) {
  FakeSyscalls os;
  os.make_dir("/gone");
  ASSERT_TRUE(os.chdir("/gone"));
  ASSERT_TRUE(os.rmdir("/gone"));
  EXPECT_EQ(os.getcwd().error().code, ENOENT);
  EXPECT_EQ(os.open("new", O_WRONLY | O_CREAT, 0644).error().code, ENOENT);
}

TEST(FakeChroot, NeedsRootAndConfinesPaths) {
  FakeSyscalls os;
  os.write_file("/jail/etc/conf", "inside");
  os.write_file("/etc/conf", "outside");
  ASSERT_TRUE(os.chroot("/jail"));
  // The cwd stays outside until chdir, as on Linux.
  EXPECT_EQ(*os.getcwd(), "(unreachable)/");
  ASSERT_TRUE(os.chdir("/"));
  EXPECT_EQ(*os.getcwd(), "/");
  EXPECT_EQ(read_all(os, *os.open("/etc/conf", O_RDONLY, 0)), "inside");
  EXPECT_EQ(read_all(os, *os.open("/../../etc/conf", O_RDONLY, 0)), "inside");
  EXPECT_EQ(os.process(os.getpid()).root, "/jail");

  FakeSyscalls unprivileged(user(1000));
  unprivileged.make_dir("/jail");
  EXPECT_EQ(unprivileged.chroot("/jail").error().code, EPERM);
  EXPECT_EQ(unprivileged.chroot("/missing").error().code, ENOENT);
}

TEST(FakeFlock, ExclusiveLocksConflictBetweenOpenFileDescriptions) {
  FakeSyscalls os;
  const int a = *os.open("/tmp/lock", O_RDWR | O_CREAT, 0644);
  const int b = *os.open("/tmp/lock", O_RDWR, 0);
  ASSERT_TRUE(os.flock(a, LOCK_EX | LOCK_NB));
  EXPECT_EQ(os.flock(b, LOCK_EX | LOCK_NB).error().code, EWOULDBLOCK);
  EXPECT_EQ(os.flock(b, LOCK_SH | LOCK_NB).error().code, EWOULDBLOCK);
  EXPECT_EQ(os.flock(b, LOCK_EX).error().code, EDEADLK) << "would block forever";
  // The same description may lock again; a dup shares the lock.
  const int a2 = *os.dup(a);
  EXPECT_TRUE(os.flock(a2, LOCK_EX | LOCK_NB));
  ASSERT_TRUE(os.flock(a, LOCK_UN));
  EXPECT_TRUE(os.flock(b, LOCK_EX | LOCK_NB));
}

TEST(FakeFlock, SharedLocksCoexist) {
  FakeSyscalls os;
  const int a = *os.open("/tmp/lock", O_RDWR | O_CREAT, 0644);
  const int b = *os.open("/tmp/lock", O_RDONLY, 0);
  ASSERT_TRUE(os.flock(a, LOCK_SH | LOCK_NB));
  EXPECT_TRUE(os.flock(b, LOCK_SH | LOCK_NB));
  // A failed conversion drops the old lock first, as Linux does.
  EXPECT_EQ(os.flock(a, LOCK_EX | LOCK_NB).error().code, EWOULDBLOCK);
  EXPECT_TRUE(os.flock(b, LOCK_EX | LOCK_NB));
}

TEST(FakeFlock, IsReleasedWhenTheLastDescriptorOfTheDescriptionCloses) {
  FakeSyscalls os;
  const int a = *os.open("/tmp/lock", O_RDWR | O_CREAT, 0644);
  const int copy = *os.dup(a);
  const int b = *os.open("/tmp/lock", O_RDWR, 0);
  ASSERT_TRUE(os.flock(a, LOCK_EX | LOCK_NB));
  ASSERT_TRUE(os.close(a));
  EXPECT_EQ(os.flock(b, LOCK_EX | LOCK_NB).error().code, EWOULDBLOCK);
  ASSERT_TRUE(os.close(copy));
  EXPECT_TRUE(os.flock(b, LOCK_EX | LOCK_NB));
}

TEST(FakeFlock, ForkSharesTheLockAndExitReleasesIt) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const int fd = *os.open("/tmp/lock", O_RDWR | O_CREAT, 0644);
  ASSERT_TRUE(os.flock(fd, LOCK_EX | LOCK_NB));
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.close(fd));  // the child still holds the description
  const int other = *os.open("/tmp/lock", O_RDWR, 0);
  EXPECT_EQ(os.flock(other, LOCK_EX | LOCK_NB).error().code, EWOULDBLOCK);
  os.switch_to(child);
  testing_support::ends([&] { os.exit_now(0); });
  os.switch_to(parent);
  EXPECT_TRUE(os.flock(other, LOCK_EX | LOCK_NB));
}

TEST(FakeFlock, RejectsBadOperations) {
  FakeSyscalls os;
  const int fd = *os.open("/tmp/lock", O_RDWR | O_CREAT, 0644);
  EXPECT_EQ(os.flock(fd, 0).error().code, EINVAL);
  EXPECT_EQ(os.flock(fd, LOCK_UN | LOCK_EX).error().code, EINVAL);
  EXPECT_EQ(os.flock(42, LOCK_EX).error().code, EBADF);
}

// ---- Regressions found by the differential tests against the real kernel ---------------

TEST(FakeOpen, OTruncAsksForWriteAccessSoADirectoryRefusesIt) {
  FakeSyscalls os;
  os.make_dir("/w/d");
  EXPECT_EQ(os.open("/w/d", O_RDONLY | O_TRUNC, 0).error().code, EISDIR);
  EXPECT_EQ(os.open("/w/d", O_RDONLY | O_TRUNC | O_DIRECTORY, 0).error().code, EISDIR);
  EXPECT_TRUE(os.open("/w/d", O_RDONLY | O_DIRECTORY, 0));
}

TEST(FakeOpen, OCreatWithATrailingSlashIsEisdirWhateverTheNameIs) {
  FakeSyscalls os;
  os.write_file("/w/file", "x");
  os.make_dir("/w/d");
  os.make_symlink("missing", "/w/dangling");
  os.make_symlink("loop", "/w/loop");
  for (const char* path : {"/w/file/", "/w/d/", "/w/dangling/", "/w/loop/", "/w/new/"}) {
    EXPECT_EQ(os.open(path, O_RDWR | O_CREAT, 0644).error().code, EISDIR) << path;
    EXPECT_EQ(os.open(path, O_RDWR | O_CREAT | O_EXCL, 0644).error().code, EISDIR) << path;
  }
  EXPECT_FALSE(os.stat_path("/w/missing"));
}

TEST(FakeOpen, ODirectoryOnAnUnfollowedSymlinkIsEnotdirNotEloop) {
  FakeSyscalls os;
  os.make_dir("/w/d");
  os.make_symlink("d", "/w/s");
  EXPECT_EQ(os.open("/w/s", O_RDONLY | O_NOFOLLOW | O_DIRECTORY, 0).error().code, ENOTDIR);
  EXPECT_EQ(os.open("/w/s", O_RDONLY | O_NOFOLLOW, 0).error().code, ELOOP);
}

TEST(FakeTree, ATrailingSlashDoesNotMakeTheCallsThatCreateOrRemoveFollowASymlink) {
  FakeSyscalls os;
  os.make_dir("/w/empty");
  os.make_symlink("empty", "/w/s");
  EXPECT_EQ(os.rmdir("/w/s/").error().code, ENOTDIR);
  EXPECT_EQ(os.unlink("/w/s/").error().code, ENOTDIR);
  EXPECT_EQ(os.mkdir("/w/s/", 0755).error().code, EEXIST);
  EXPECT_EQ(os.symlink("x", "/w/s/").error().code, EEXIST);
  os.make_symlink("missing", "/w/dangling");
  EXPECT_EQ(os.rename("/w/dangling/", "/w/other").error().code, ENOTDIR);
  EXPECT_TRUE(os.stat_path("/w/empty")) << "rmdir through the link removed its target";
}

TEST(FakeTree, RenameChecksInLinuxsOrder) {
  FakeSyscalls os;
  os.make_dir("/w/d");
  os.write_file("/w/d/f", "x");
  os.write_file("/w/file", "x");
  os.make_symlink("file", "/w/s");
  // Both parents are resolved before the source is looked up...
  EXPECT_EQ(os.rename("/w/missing", "/w/s/x").error().code, ENOTDIR);
  // ... then ".", ".." and "/" are refused...
  EXPECT_EQ(os.rename("/w/missing", "/w/.").error().code, EBUSY);
  // ... then the target may not enclose the source's directory, whatever the types.
  EXPECT_EQ(os.rename("/w/d/f", "/w/d").error().code, ENOTEMPTY);
  EXPECT_EQ(os.rename("/w/d", "/w/d/sub").error().code, EINVAL);
  EXPECT_EQ(os.rename("/w/file", "/w/d").error().code, EISDIR);
}

TEST(FakeTree, RenameOntoItselfSucceedsBeforePermissionsAreChecked) {
  FakeSyscalls os(user(1000, 100));
  os.make_dir("/ro", 0555);
  os.write_file("/ro/f", "x", 0644, 1000, 100);
  EXPECT_TRUE(os.rename("/ro/f", "/ro/f"));
  EXPECT_EQ(os.rename("/ro/f", "/ro/g").error().code, EACCES);
}

TEST(FakeTree, MovingADirectoryToAnotherParentNeedsWritePermissionOnIt) {
  FakeSyscalls os(user(1000, 100));
  os.make_dir("/w", 0755, 1000, 100);
  os.make_dir("/w/a", 0755, 1000, 100);
  os.make_dir("/w/d", 0555, 1000, 100);
  EXPECT_EQ(os.rename("/w/d", "/w/a/d").error().code, EACCES);
  EXPECT_TRUE(os.rename("/w/d", "/w/e")) << "the same parent: \"..\" does not change";
}

TEST(FakeTree, RmdirAndUnlinkCheckPermissionBeforeTypeAndDotBeforeBoth) {
  FakeSyscalls os(user(1000, 100));
  os.make_dir("/ro", 0555);
  os.write_file("/ro/f", "x");
  EXPECT_EQ(os.rmdir("/ro/f").error().code, EACCES);
  ASSERT_TRUE(os.chdir("/ro"));
  EXPECT_EQ(os.unlink(".").error().code, EISDIR);
}

TEST(FakeWrite, UnprivilegedWritesAndTruncationsClearSetuidAndSetgid) {
  FakeSyscalls os(user(1000, 100));
  os.make_dir("/w", 0755, 1000, 100);
  os.write_file("/w/u", "x", 04755, 1000, 100);
  os.write_file("/w/g", "x", 02755, 1000, 100);
  os.write_file("/w/g-noexec", "x", 02745, 1000, 100);
  os.write_file("/w/t", "x", 06755, 1000, 100);
  const int u = *os.open("/w/u", O_WRONLY, 0);
  ASSERT_TRUE(os.write(u, "", 0));
  EXPECT_EQ(os.stat_path("/w/u")->st_mode & 07777, 04755u) << "an empty write changes nothing";
  ASSERT_TRUE(os.write(u, "y", 1));
  EXPECT_EQ(os.stat_path("/w/u")->st_mode & 07777, 0755u);
  ASSERT_TRUE(os.ftruncate(*os.open("/w/g", O_WRONLY, 0), 0));
  EXPECT_EQ(os.stat_path("/w/g")->st_mode & 07777, 0755u);
  ASSERT_TRUE(os.write(*os.open("/w/g-noexec", O_WRONLY, 0), "y", 1));
  EXPECT_EQ(os.stat_path("/w/g-noexec")->st_mode & 07777, 02745u)
      << "set-group-ID without group execute is a locking hint, kept for a group member";
  ASSERT_TRUE(os.open("/w/t", O_WRONLY | O_TRUNC, 0));
  EXPECT_EQ(os.stat_path("/w/t")->st_mode & 07777, 0755u);
}

TEST(FakeWrite, RootKeepsSetuidAndSetgid) {
  FakeSyscalls os;
  os.write_file("/w/t", "x", 06755);
  ASSERT_TRUE(os.write(*os.open("/w/t", O_WRONLY | O_TRUNC, 0), "y", 1));
  EXPECT_EQ(os.stat_path("/w/t")->st_mode & 07777, 06755u);
}

TEST(FakeFlock, TheOperationIsCheckedBeforeTheDescriptor) {
  FakeSyscalls os;
  EXPECT_EQ(os.flock(42, 0).error().code, EINVAL);
  EXPECT_EQ(os.flock(42, LOCK_NB).error().code, EINVAL);
  EXPECT_EQ(os.flock(42, LOCK_SH).error().code, EBADF);
}

TEST(FakeFlock, ADescriptionOpenedNeitherForReadingNorWritingCannotLock) {
  FakeSyscalls os;
  os.write_file("/w/f", "x");
  const int fd = *os.open("/w/f", O_ACCMODE, 0);
  EXPECT_EQ(os.flock(fd, LOCK_EX | LOCK_NB).error().code, EBADF);
  EXPECT_EQ(os.flock(fd, LOCK_SH).error().code, EBADF);
  EXPECT_TRUE(os.flock(fd, LOCK_UN));
}

TEST(FakeRead, AZeroByteReadOfAFileWithANullBufferReturnsZero) {
  FakeSyscalls os;
  os.write_file("/w/f", "data");
  const int fd = *os.open("/w/f", O_RDONLY, 0);
  EXPECT_EQ(*os.read(fd, nullptr, 0), 0u);
  char c;
  EXPECT_EQ(*os.read(fd, &c, 1), 1u) << "the offset did not move";
  EXPECT_EQ(c, 'd');
}

}  // namespace
}  // namespace daemonkit::fake
