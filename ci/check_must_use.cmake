# Builds a target that drops a result and passes only if the compiler refuses it for that reason:
#   cmake -DBUILD_DIR=<dir> -DTARGET=<target> -DTYPE=<result type> -P ci/check_must_use.cmake
# A build that succeeds means the result type can be ignored again; a build that fails for any
# other reason (a typo, a missing header) fails the check too, rather than passing by accident.
foreach(var BUILD_DIR TARGET TYPE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_must_use.cmake needs -D${var}=...")
  endif()
endforeach()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(status EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled: a dropped ${TYPE} is not diagnosed.\n${output}")
endif()
# g++: "ignoring returned value of type 'daemonkit::core::StepResult<void>', declared with
# attribute 'nodiscard' [-Werror=unused-result]". clang 14 names no type: "must_use_probe.cpp:
# 36:3: error: ignoring return value of function declared with 'nodiscard' attribute
# [-Werror,-Wunused-result]", for a type's attribute too; the probe differs from the build that
# compiles only by the dropped result, so the place and the reason are enough.
if(NOT output MATCHES "${TYPE}[^\n]*nodiscard[^\n]*-Werror=unused-result" AND
   NOT output MATCHES "must_use_probe\\.cpp:[0-9]+:[0-9]+: error: ignoring return value[^\n]*nodiscard[^\n]*-Werror,-Wunused-result")
  message(FATAL_ERROR "${TARGET} failed to build, but not for a dropped ${TYPE}:\n${output}")
endif()
message(STATUS "${TARGET}: a dropped ${TYPE} does not compile, as it should")
