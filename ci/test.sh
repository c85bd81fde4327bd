#!/usr/bin/env bash
# The test command: installs what is missing, checks the layout (.clang-format), then builds
# and runs every test twice with clang (plain, with -Werror; then under AddressSanitizer +
# UndefinedBehaviorSanitizer), builds the libraries with g++ and runs the multi-threaded tests
# under ThreadSanitizer, and finally installs the package to a temporary prefix and builds and
# tests the downstream consumer against it (with g++, the compiler users get by default) and as
# a subproject.
#   bash ci/test.sh            # everything
#   DAEMONKIT_CI_STAGES="plain" bash ci/test.sh   # a subset: format plain asan tsan consumer
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
stages=${DAEMONKIT_CI_STAGES:-"format plain asan tsan consumer"}

bash ci/install_deps.sh

# <build-dir> <extra cmake args...>; $build_targets narrows the build, $ctest_args the run.
configure_build_test() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAEMONKIT_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs" ${build_targets:+--target $build_targets}
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300 ${ctest_args:-})
}

# -g1 (line tables, enough for sanitizer reports and backtraces) instead of -g halves the compile
# time of the template-heavy test files. The sanitizer stages run at -O1, as their authors
# advise, and keep assert() on (ASan's libraries at -O0 compiled no faster with clang: 187
# against 195 job-s).
plain_opt="-O2 -g1 -DNDEBUG"
asan_opt="-O1 -g1"
tsan_opt="-O1 -g1"
# The test programs' own sources at -O0 (the libraries keep the options above): they are most
# of each build, and compile in about half the time (see cmake/daemonkit_helpers.cmake).
test_opt="-DDAEMONKIT_TEST_CXX_FLAGS=-O0"
# clang with one precompiled header for every test program (cmake/test_pch.h) builds the plain
# and ASan stages: 224 s and 258 s on 2 cores, against 324 s and about 690 s for g++ without
# it (g++'s PCH of the same headers made each file slower). g++ still builds sys, core and the
# fake with -Werror in the TSan stage, and the consumers.
# The libraries and the fake get precompiled headers of their own (cmake/library_pch.h,
# fake_pch.h): with them sys and core compiled in 100 cpu-s against 220, the fake in 105
# against 131.
clang_opt="-DCMAKE_CXX_COMPILER=clang++ -DDAEMONKIT_TEST_PCH=ON -DDAEMONKIT_LIBRARY_PCH=ON"
# One ctest test per gtest program, not per case (see cmake/daemonkit_helpers.cmake): the
# cases are the same, in one ctest test per program instead of one per case.
program_tests="-DDAEMONKIT_TEST_GRANULARITY=program"
# lld links the ~45 programs in about 40% of ld.bfd's time (sys_mock_test: 0.37 against 0.95
# cpu-s); the links took 26 s of the plain build and 47 s of the ASan one.
link_opt="-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld"

# The sanitizer stages link the daemonkit binary against the shared C++ runtime (see
# cli/CMakeLists.txt): ASan and TSan must interpose its allocator.

# GCC 12 reports -Wmaybe-uninitialized false positives inside libstdc++ once sanitizers change
# inlining (seen on tl::expected's move of an Error); the TSan stage (g++) turns it off.
gcc_sanitizer_warnings="-Wno-maybe-uninitialized"

ci_started=$SECONDS
for stage in $stages; do
  echo "=== stage: $stage"
  stage_started=$SECONDS
  case $stage in
    format)
      # The layout .clang-format states, first: it takes seconds and fails for a reason that
      # needs no build to see.
      bash ci/format.sh
      ;;
    plain)
      configure_build_test build/ci-plain -DCMAKE_INSTALL_PREFIX="$root/build/ci-prefix" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$plain_opt" "$test_opt" $link_opt $program_tests \
        $clang_opt
      ;;
    asan)
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      configure_build_test build/ci-asan -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$asan_opt" \
        -DDAEMONKIT_STATIC_CLI_RUNTIME=OFF "$test_opt" $link_opt $program_tests $clang_opt \
        -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
      unset ASAN_OPTIONS UBSAN_OPTIONS
      ;;
    tsan)
      # Only the suites that run threads: the rest is single-threaded by design (the fake
      # kernel needs no threads), and TSan does not support a child of a threaded process
      # that starts threads of its own.
      export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
      # g++ here compiles sys, core and the fake with -Werror (clang builds the other stages).
      # The two spawn cases run a second thread beside the vfork child (the parent's memory
      # it borrows is what TSan would see raced); the host-name case resolves on the pool.
      build_targets="core_reactor_linux_test core_thread_call_queue_test core_process_linux_test
        core_net_linux_test" \
      ctest_args="-R ${DAEMONKIT_TSAN_TESTS:-^(WakerOnLinux\\.|ReactorOnLinux\\.|ThreadCallQueue\\.|ThreadPool\\.|SpawnChildOnLinux\\.(SpawnsWhileAnotherThreadForksAndSpawns|ASwitchOfIdsWhileAnotherThreadRunsLeavesThatThreadAlone)$|NetLinux\\.AHostNameIsResolvedOnTheThreadPool$)}" \
        configure_build_test build/ci-tsan -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$tsan_opt" \
        -DDAEMONKIT_STATIC_CLI_RUNTIME=OFF \
        -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer $gcc_sanitizer_warnings"
      unset TSAN_OPTIONS
      ;;
    consumer)
      [ -d build/ci-plain ] || configure_build_test build/ci-plain \
        -DCMAKE_INSTALL_PREFIX="$root/build/ci-prefix" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$plain_opt"
      rm -rf build/ci-prefix build/ci-consumer-*
      cmake --install build/ci-plain --prefix "$root/build/ci-prefix"
      # examples/consumer, configured with <dir> <cmake args...>, built, and its tests run.
      consumer() {
        local dir=build/ci-consumer-$1; shift
        cmake -S examples/consumer -B "$dir" -G Ninja "$@"
        cmake --build "$dir" -j "$jobs"
        (cd "$dir" && ctest --output-on-failure --no-tests=error)
      }
      # The three ways a project gets daemonkit: the installed package, add_subdirectory of the
      # checkout, FetchContent from git (this checkout's HEAD, over file://: no network).
      consumer package -DCMAKE_PREFIX_PATH="$root/build/ci-prefix"
      # As a subproject, with clang: g++ compiled the same libraries in the TSan stage (and
      # compiles the package consumer above), clang compiles them here in ~2/3 of the time.
      consumer subdirectory -DDAEMONKIT_FROM=subdirectory -DDAEMONKIT_SOURCE_DIR="$root" \
        -DCMAKE_CXX_COMPILER=clang++ -DDAEMONKIT_LIBRARY_PCH=ON
      if [ -n "$(git status --porcelain)" ]; then
        echo "note: FetchContent builds the last commit, without this tree's uncommitted changes"
      fi
      # FetchContent_MakeAvailable adds the fetched tree as a subdirectory, whose sources the
      # consumer above compiled and tested: this one is fetched, configured and generated (every
      # daemonkit:: target it links resolved), not compiled again, which saved about 2 of CI's
      # minutes.
      cmake -S examples/consumer -B build/ci-consumer-fetchcontent -G Ninja \
        -DDAEMONKIT_FROM=fetchcontent \
        -DDAEMONKIT_GIT_REPOSITORY="file://$root" -DDAEMONKIT_GIT_TAG="$(git rev-parse HEAD)"
      # Linking daemonkit::core needs no GoogleTest: a consumer without the fake configures and
      # builds with GoogleTest hidden, against the package and as a subproject (configured
      # only: the subdirectory consumer above compiled the same sources). Asking for the fake
      # then must fail, and nothing but the fake's own export file names GTest.
      no_gtest=(-DCONSUMER_TESTS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON)
      cmake -S examples/consumer -B build/ci-consumer-core-only -G Ninja \
        -DCMAKE_PREFIX_PATH="$root/build/ci-prefix" "${no_gtest[@]}"
      cmake --build build/ci-consumer-core-only -j "$jobs"
      cmake -S examples/consumer -B build/ci-consumer-core-only-subdirectory -G Ninja \
        -DDAEMONKIT_FROM=subdirectory -DDAEMONKIT_SOURCE_DIR="$root" "${no_gtest[@]}"
      if cmake -S examples/consumer -B build/ci-consumer-fake-without-gtest -G Ninja \
           -DCMAKE_PREFIX_PATH="$root/build/ci-prefix" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
           >build/ci-consumer-fake-without-gtest.log 2>&1; then
        echo "find_package(daemonkit COMPONENTS fake) succeeded without GoogleTest" >&2; exit 1
      fi
      grep -q 'GTest' build/ci-consumer-fake-without-gtest.log ||
        { cat build/ci-consumer-fake-without-gtest.log; echo "failed, not for GTest" >&2; exit 1; }
      if grep -l GTest build/ci-prefix/lib/cmake/daemonkit/daemonkitTargets*.cmake; then
        echo "daemonkit's core export set names GTest" >&2; exit 1
      fi
      for pc in daemonkit daemonkit-fake; do
        PKG_CONFIG_PATH="$root/build/ci-prefix/lib/pkgconfig" pkg-config --cflags --libs $pc
      done
      ;;
    *) echo "unknown stage: $stage" >&2; exit 2 ;;
  esac
  echo "=== stage $stage passed in $((SECONDS - stage_started)) s"
done
echo "ci/test.sh: all stages passed ($stages) in $((SECONDS - ci_started)) s"
