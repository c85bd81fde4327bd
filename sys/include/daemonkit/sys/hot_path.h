// DAEMONKIT_HOT marks a function that every request passes through: the loop's turn, a read,
// its echo, an accept. GCC (-freorder-functions, on from -O2) puts such functions in .text.hot,
// which the linker lays out together, so the path spans a few pages of code rather than one or
// more per translation unit. That matters more than its instruction count suggests: on a host
// with page-table isolation and no PCID every system call empties the TLB, and each page the
// path then touches costs a page walk.
#pragma once

#if defined(__GNUC__)
#define DAEMONKIT_HOT __attribute__((hot))
#else
#define DAEMONKIT_HOT
#endif
