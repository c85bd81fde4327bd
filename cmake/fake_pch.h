// What most of the fake kernel's files include, precompiled once for them when
// DAEMONKIT_LIBRARY_PCH is on (see cmake/daemonkit_helpers.cmake). As cmake/library_pch.h: only
// a cache of includes each file makes itself.
#pragma once

#include "library_pch.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstring>
#include <deque>
#include <initializer_list>
#include <map>

#include "daemonkit/fake/fake_syscalls.h"
