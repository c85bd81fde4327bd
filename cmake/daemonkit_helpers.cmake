# Warnings every daemonkit target is built with; -Werror only where asked (CI turns it on).
function(daemonkit_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
    -Wimplicit-fallthrough $<$<BOOL:${DAEMONKIT_WERROR}>:-Werror>)
endfunction()

# The rapidcheck parameters every test runs with under ctest: a fixed seed, so that a run
# passes or fails for a reason and not for the seed it drew (ci/explore_seeds.sh draws new
# ones). They go before the RC_PARAMS of ctest's environment, and rapidcheck takes the last
# value of a key, so `RC_PARAMS="seed=N" ctest ...` still runs seed N. Empty: no default.
set(DAEMONKIT_RC_PARAMS "seed=20261201" CACHE STRING
    "rapidcheck parameters of the tests under ctest, overridden key by key by RC_PARAMS")

# Extra compile options for the test programs' own sources (the libraries they test keep the
# build type's). CI's plain and ASan stages pass -O0: the gmock-heavy test files are most of a
# build, and one compiles in about 16 s at -O0 against 29 s at -O2 (close_fds_test.cpp).
set(DAEMONKIT_TEST_CXX_FLAGS "" CACHE STRING "compile options added to the test programs")

# How ctest sees a GoogleTest program: `case` lists its tests one by one (`ctest -R Suite.Name`
# runs one), `program` makes the whole program one ctest test that runs every case in one
# process. CI's plain and ASan stages use `program`: 1,192 processes cost more than the tests
# they run (an ASan process takes about 0.1 s to start and exit), while gtest's own output
# still names every failing case.
set(DAEMONKIT_TEST_GRANULARITY "case" CACHE STRING "one ctest test per gtest `case` or `program`")
set_property(CACHE DAEMONKIT_TEST_GRANULARITY PROPERTY STRINGS case program)
if(NOT DAEMONKIT_TEST_GRANULARITY MATCHES "^(case|program)$")
  message(FATAL_ERROR "DAEMONKIT_TEST_GRANULARITY is case or program, not "
                      "'${DAEMONKIT_TEST_GRANULARITY}'")
endif()

# One precompiled header (cmake/test_pch.h: GoogleTest, GoogleMock, rapidcheck and the fake)
# shared by every test program. Parsing those headers was about half of a small test file's
# compile time; with clang's PCH a test file compiles in 30-50% less time. g++'s PCH of the same
# headers is 200 MB and made each file slower, so CI turns this on only for clang.
option(DAEMONKIT_TEST_PCH "precompile the headers every test includes, once (clang)" OFF)

# A program whose start-up is on its user's critical path (the daemonkit command; a daemon's
# launcher, which exits only once the daemon is ready): the C++ runtime linked statically, and no
# libfmt.so (daemonkit_sys carries fmt's code, and --as-needed drops the libfmt.so fmt::fmt still
# names). Loading and relocating libstdc++.so and libfmt.so cost about as much as the whole
# double fork (bench/launch). Sections the program never reaches are dropped at link time (a
# third of the binary, and of the relocations every start applies). Not under sanitizers, whose
# runtimes must interpose the C++ allocator.
function(daemonkit_static_runtime target)
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
  target_link_options(${target} PRIVATE
    -static-libstdc++ -static-libgcc -Wl,--gc-sections -Wl,--as-needed)
endfunction()

function(daemonkit_test_pch_target)
  if(NOT DAEMONKIT_TEST_PCH OR TARGET daemonkit_test_pch)
    return()
  endif()
  # The PCH is made with a test program's options, so that every test program can reuse it.
  add_library(daemonkit_test_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/test_pch.cpp)
  daemonkit_warnings(daemonkit_test_pch)
  target_compile_options(daemonkit_test_pch PRIVATE ${DAEMONKIT_TEST_CXX_FLAGS})
  target_link_libraries(daemonkit_test_pch PRIVATE daemonkit::fake rapidcheck rapidcheck_gtest
                                                   GTest::gmock GTest::gtest_main)
  target_precompile_headers(daemonkit_test_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/test_pch.h)
endfunction()

# A GoogleTest executable whose tests ctest lists one by one (or as one, see above). One that
# links rapidcheck is labelled `randomized` and built by the target daemonkit_randomized_tests: the suites
# ci/explore_seeds.sh runs with new seeds.
# LONG marks a program that takes seconds (it forks real processes or waits on timeouts): ctest
# starts it first, so that under `program` it does not run alone at the end of a parallel run.
#   daemonkit_add_gtest(<name> SOURCES <files...> [LIBS <targets...>] [TIMEOUT <seconds>] [LONG])
function(daemonkit_add_gtest name)
  cmake_parse_arguments(ARG "LONG" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  daemonkit_warnings(${name})
  target_compile_options(${name} PRIVATE ${DAEMONKIT_TEST_CXX_FLAGS})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  if(DAEMONKIT_TEST_PCH)
    daemonkit_test_pch_target()
    target_precompile_headers(${name} REUSE_FROM daemonkit_test_pch)
  endif()
  # Under `program` the cases share one timeout: the sum of theirs would be minutes.
  if(DAEMONKIT_TEST_GRANULARITY STREQUAL "program")
    set(ARG_TIMEOUT 300)
  endif()
  # A test whose name changes between listing and running (a parameter printed as raw bytes
  # holding a pointer) would match no test and pass having run nothing: fail it instead.
  set(properties TIMEOUT ${ARG_TIMEOUT}
                 FAIL_REGULAR_EXPRESSION "Running 0 tests from 0 test suites")
  if(ARG_LONG)
    list(APPEND properties COST 1000)
  endif()
  if(DAEMONKIT_RC_PARAMS)
    list(APPEND properties ENVIRONMENT_MODIFICATION
         "RC_PARAMS=string_prepend:${DAEMONKIT_RC_PARAMS} ")
  endif()
  if("rapidcheck" IN_LIST ARG_LIBS)
    list(APPEND properties LABELS randomized)
    if(NOT TARGET daemonkit_randomized_tests)
      add_custom_target(daemonkit_randomized_tests)
    endif()
    add_dependencies(daemonkit_randomized_tests ${name})
  endif()
  if(DAEMONKIT_TEST_GRANULARITY STREQUAL "program")
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES ${properties})
  else()
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
  endif()
endfunction()

# What every library the daemonkit binary links is compiled with (sys, the core areas, cli).
# fmt's compiled code is in daemonkit_sys (sys/src/fmt_code.cpp), so the binary needs neither
# libfmt.so nor, through it, libstdc++.so (see cli/CMakeLists.txt). One section per function and
# object lets a static link drop what it never reaches (--gc-sections).
function(daemonkit_library target)
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
endfunction()

# One precompiled header (cmake/library_pch.h: the standard library, fmt, tl::expected and the
# Syscalls interface) shared by sys and every core area. Those headers were 40-70% of a library
# file's compile time at -O2 with clang (2.0 of 4.6 s for core/net/src/tcp.cpp). The PCH is
# built with the libraries' own options (position-independent, one section per function), so
# it is reused only by targets made with daemonkit_library_pch; cli, built without -fPIC, parses
# its headers as before.
option(DAEMONKIT_LIBRARY_PCH "precompile the headers sys and core include, once (clang)" OFF)

function(daemonkit_library_pch target)
  if(NOT DAEMONKIT_LIBRARY_PCH)
    return()
  endif()
  if(NOT TARGET daemonkit_library_pch)
    add_library(daemonkit_library_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/library_pch.cpp)
    set_target_properties(daemonkit_library_pch PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_include_directories(daemonkit_library_pch PRIVATE ${PROJECT_SOURCE_DIR}/sys/include)
    target_link_libraries(daemonkit_library_pch PRIVATE fmt::fmt tl::expected)
    target_compile_features(daemonkit_library_pch PRIVATE cxx_std_20)
    daemonkit_warnings(daemonkit_library_pch)
    daemonkit_library(daemonkit_library_pch)
    target_precompile_headers(daemonkit_library_pch
                              PRIVATE ${PROJECT_SOURCE_DIR}/cmake/library_pch.h)
  endif()
  target_precompile_headers(${target} REUSE_FROM daemonkit_library_pch)
endfunction()

# The fake kernel's own precompiled header (cmake/fake_pch.h): its files are built with the
# fake's options (GoogleMock's definitions), so they cannot reuse the libraries' one. The mock,
# compiled with the test programs' options, parses its headers itself.
function(daemonkit_fake_pch target)
  if(NOT DAEMONKIT_LIBRARY_PCH)
    return()
  endif()
  target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/fake_pch.h)
  set_source_files_properties(${ARGN} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
endfunction()
