# Injected by ci/coverage.sh (CMAKE_PROJECT_INCLUDE): instruments core/'s areas, and only them,
# for gcov. Everything else keeps the flags of the everyday build (build/dev), so ccache serves
# it and a coverage run compiles little more than core/.
function(daemonkit_coverage_instrument_core)
  get_property(areas GLOBAL PROPERTY DAEMONKIT_CORE_AREAS)
  if(NOT areas)
    message(FATAL_ERROR "coverage: no core areas were recorded (DAEMONKIT_CORE_AREAS)")
  endif()
  foreach(area IN LISTS areas)
    # -O0 after the build type's -O2: the last -O wins, and gcov's line counts need code that
    # optimisation has not merged or dropped.
    target_compile_options(daemonkit_core_${area} PRIVATE -O0 --coverage)
    # Whatever links an area links gcov's runtime with it.
    target_link_options(daemonkit_core_${area} INTERFACE --coverage)
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL daemonkit_coverage_instrument_core)
