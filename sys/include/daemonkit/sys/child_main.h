// ChildMain: the body a vfork child runs (see Syscalls::vfork). It borrows the callable rather
// than owning a copy, so building one never allocates: the child may be created by a process
// that is itself a vfork child, where the heap belongs to a suspended ancestor.
#pragma once

#include <type_traits>
#include <utility>

namespace daemonkit::sys {

class ChildMain {
 public:
  // `body` must outlive the vfork call, which it does when passed straight to it.
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, ChildMain> &&
           std::is_invocable_r_v<int, std::remove_reference_t<F>&>) ChildMain(F&& body)
  noexcept  // NOLINT(google-explicit-constructor): made at the call site
      : target_(const_cast<void*>(static_cast<const void*>(&body))), call_([](void* target) -> int {
          return (*static_cast<std::remove_reference_t<F>*>(target))();
        }) {}

  // The child's exit status when the body returns instead of exec'ing or ending itself.
  int operator()() const { return call_(target_); }

 private:
  void* target_;
  int (*call_)(void*);
};

}  // namespace daemonkit::sys
