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

# A GoogleTest executable whose tests ctest lists one by one. One that links rapidcheck is
# labelled `randomized` and built by the target daemonkit_randomized_tests: the suites
# ci/explore_seeds.sh runs with new seeds.
#   daemonkit_add_gtest(<name> SOURCES <files...> [LIBS <targets...>] [TIMEOUT <seconds>])
function(daemonkit_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  daemonkit_warnings(${name})
  target_compile_options(${name} PRIVATE ${DAEMONKIT_TEST_CXX_FLAGS})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  # A test whose name changes between listing and running (a parameter printed as raw bytes
  # holding a pointer) would match no test and pass having run nothing: fail it instead.
  set(properties TIMEOUT ${ARG_TIMEOUT}
                 FAIL_REGULAR_EXPRESSION "Running 0 tests from 0 test suites")
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
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
endfunction()

# What every library the daemonkit binary links is compiled with (sys, the core areas, cli).
# fmt comes header-only and privately: its code lands in our archives, so the binary needs
# neither libfmt.so nor, through it, libstdc++.so (see cli/CMakeLists.txt), while users still
# link fmt::fmt for the public headers' formatters and never see FMT_HEADER_ONLY. One section per
# function and object lets a static link drop what it never reaches (--gc-sections).
function(daemonkit_library target)
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
  target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:fmt::fmt-header-only>)
endfunction()
