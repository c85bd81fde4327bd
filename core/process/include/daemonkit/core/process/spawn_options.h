// SpawnOptions: what spawn_process starts, and how (Twisted's spawnProcess arguments).
// Everything here is checked, and every user and group looked up, before anything is created.
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace daemonkit::core {

// What the parent does with one of the child's descriptors: Twisted's childFDs values "r",
// "w" and a parent descriptor.
class ChildFd {
 public:
  enum class Kind {
    kRead,     // a pipe: the child writes at this number, the parent reads (child_data_received)
    kWrite,    // a pipe: the parent writes (write_to_child), the child reads at this number
    kInherit,  // the parent's descriptor, given to the child as this number; the parent keeps
               // it, and never reads, writes or closes it for the child
  };

  [[nodiscard]] static ChildFd read() { return ChildFd(Kind::kRead, -1); }
  [[nodiscard]] static ChildFd write() { return ChildFd(Kind::kWrite, -1); }
  [[nodiscard]] static ChildFd inherit(int parent_fd) { return ChildFd(Kind::kInherit, parent_fd); }

  [[nodiscard]] Kind kind() const { return kind_; }
  // The parent's descriptor, for kInherit; -1 otherwise.
  [[nodiscard]] int parent_fd() const { return parent_fd_; }

  friend bool operator==(const ChildFd&, const ChildFd&) = default;

 private:
  ChildFd(Kind kind, int parent_fd) : kind_(kind), parent_fd_(parent_fd) {}

  Kind kind_;
  int parent_fd_;
};

struct SpawnOptions {
  // The program's path, used as given: no PATH search (a daemon running as root must name
  // what it runs).
  std::string executable;
  // argv[0] included, and required.
  std::vector<std::string> argv;
  // KEY=VALUE entries, exactly what the program gets: nothing of the parent's is inherited
  // unless the caller copies it in.
  std::vector<std::string> environment;
  // The program's working directory; unset keeps the parent's.
  std::optional<std::string> working_directory;
  // The ids the program runs as (the switch needs root). With only a uid, the gid is that
  // user's primary group when the user database knows the uid, else the parent's effective
  // gid; with only a gid, the uid is the parent's effective uid. The supplementary groups are
  // the user's (getgrouplist), or the gid alone for a uid the database does not know.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // Run the program on a new pseudo-terminal: it leads a new session with the terminal as its
  // controlling terminal on 0, 1 and 2, and the parent reads its output as child fd 1.
  // Cannot be combined with child_fds (Twisted refuses it too).
  bool use_pty = false;
  // The terminal's size, for use_pty.
  struct winsize window_size = {24, 80, 0, 0};
  // Child descriptor -> what it is. Empty means Twisted's default: 0 written by the parent,
  // 1 and 2 read by it. Any child numbers up to ChildFdMap::kMaxChildFd; every other
  // descriptor is closed in the child.
  std::map<int, ChildFd> child_fds;
};

}  // namespace daemonkit::core
