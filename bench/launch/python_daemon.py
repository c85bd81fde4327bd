# The launch benchmark's python-daemon peer: DaemonContext with a PID lock file, then exec
# PROGRAM. python-daemon has no status channel, so its parent exits as soon as it has forked.
#   /usr/bin/python3 python_daemon.py PIDFILE PROGRAM [ARGS...]
import os
import sys

import daemon
import daemon.pidfile

with daemon.DaemonContext(pidfile=daemon.pidfile.PIDLockFile(sys.argv[1]), umask=0o077):
    os.execv(sys.argv[2], sys.argv[2:])
