// A planted violation: code that reaches the kernel without the seam. The seam check must reject
// this object (ctest expects it to fail), which proves the check can fail at all.
#include <fcntl.h>
#include <unistd.h>

int daemonkit_seam_violation() {
  const int fd = ::open("/dev/null", O_RDONLY);
  return fd >= 0 ? ::close(fd) : -1;
}
