# The launch benchmark's twistd peer: an application with nothing in it, so the launch cost is
# twistd's own (its reactor stands in for PROGRAM).
from twisted.application import service

application = service.Application("daemonkit-launch-bench")
