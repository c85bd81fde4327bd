# Warnings every daemonkit target is built with; -Werror only where asked (CI turns it on).
function(daemonkit_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
    -Wimplicit-fallthrough $<$<BOOL:${DAEMONKIT_WERROR}>:-Werror>)
endfunction()

# A GoogleTest executable whose tests ctest lists one by one.
#   daemonkit_add_gtest(<name> SOURCES <files...> [LIBS <targets...>] [TIMEOUT <seconds>])
function(daemonkit_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  daemonkit_warnings(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  # A test whose name changes between listing and running (a parameter printed as raw bytes
  # holding a pointer) would match no test and pass having run nothing: fail it instead.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
                       PROPERTIES TIMEOUT ${ARG_TIMEOUT}
                                  FAIL_REGULAR_EXPRESSION "Running 0 tests from 0 test suites")
endfunction()
