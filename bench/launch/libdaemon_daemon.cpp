// The launch benchmark's libdaemon peer: daemon_fork with libdaemon's retval pipe, its fd
// closing and PID file, then exec PROGRAM, as an Avahi-style daemon would start up.
//   libdaemon_daemon PIDFILE PROGRAM [ARGS...]
#include <libdaemon/dfork.h>
#include <libdaemon/dpid.h>
#include <unistd.h>

#include <cstdio>

namespace {
const char* g_pidfile = nullptr;  // libdaemon asks for the path through a global hook.
const char* pidfile_path() { return g_pidfile; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PIDFILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  g_pidfile = argv[1];
  daemon_pid_file_proc = pidfile_path;
  if (daemon_retval_init() < 0) return 1;
  const pid_t pid = daemon_fork();
  if (pid < 0) {
    daemon_retval_done();
    return 1;
  }
  if (pid > 0) return daemon_retval_wait(20) == 0 ? 0 : 1;
  if (daemon_close_all(-1) < 0 || daemon_pid_file_create() < 0) {
    daemon_retval_send(1);
    return 1;
  }
  daemon_retval_send(0);
  execv(argv[2], argv + 2);
  return 127;
}
