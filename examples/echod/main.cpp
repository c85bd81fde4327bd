// echod: the sample daemon, a TCP echo server, as a daemonkit application. Its one command,
// "echo", is a service maker (echo_service.h); app::run gives it twistd's command line and
// lifecycle:
//   echod --pidfile /run/echod.pid --logfile /var/log/echod.log --uid nobody echo --port 7007
//   daemonkit run --ready=pipe -- echod --nodaemon echo --port 7007   (any program's way)
#include <vector>

#include "daemonkit/core/app/app_run.h"
#include "echo_service.h"

int main(int argc, char** argv) {
  return daemonkit::app::run(argc, argv, std::vector{echod::echo_maker()});
}
