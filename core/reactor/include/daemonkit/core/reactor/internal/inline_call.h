// InlineCall: a `void()` callable stored inside the object, never on the heap.
// The slots of the reactor's thread-call ring hold one each, so that call_from_thread can take a
// lambda from a signal handler: storing it is a placement-new of the lambda, with no allocation,
// no lock and nothing that can throw. What does not fit is refused when the program compiles.
#pragma once

#include <cstddef>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace daemonkit::core {

template <std::size_t Capacity>
class InlineCall {
 public:
  static constexpr std::size_t kCapacity = Capacity;
  // Pointer alignment, not max_align_t: it keeps a ring slot (sequence + this) in one cache line.
  static constexpr std::size_t kAlignment = alignof(void*);

  // Whether a callable of type F (as passed: an rvalue, or an lvalue to copy) can be stored.
  template <typename F>
  static constexpr bool kFits =
      sizeof(std::decay_t<F>) <= Capacity &&
      alignof(std::decay_t<F>) <=
          kAlignment&& std::is_nothrow_constructible_v<std::decay_t<F>, F>&& std::
              is_nothrow_move_constructible_v<std::decay_t<F>>&& std::is_nothrow_destructible_v<
                  std::decay_t<F>>&& std::is_invocable_v<std::decay_t<F>&>;

  InlineCall() noexcept = default;
  // The requires clause keeps this from hiding the move constructor; clang-tidy 14's
  // bugprone-forwarding-reference-overload recognises only enable_if, so it says otherwise.
  template <typename F>
  requires(!std::is_same_v<std::decay_t<F>, InlineCall>) explicit InlineCall(
      F&& fn) noexcept {  // NOLINT(bugprone-forwarding-reference-overload)
    emplace(std::forward<F>(fn));
  }
  InlineCall(InlineCall&& other) noexcept { take(other); }
  InlineCall& operator=(InlineCall&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  InlineCall(const InlineCall&) = delete;
  InlineCall& operator=(const InlineCall&) = delete;
  ~InlineCall() { reset(); }

  // Replaces the held callable with `fn`. The checks are here, where the type is known, so a
  // caller of call_from_thread reads which rule its lambda broke.
  template <typename F>
  void emplace(F&& fn) noexcept {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&>,
                  "InlineCall: the callable must be callable with no arguments");
    static_assert(sizeof(Fn) <= Capacity,
                  "InlineCall: the callable is larger than the inline capacity (for "
                  "call_from_thread: ThreadCallQueue::kInlineBytes, 48 bytes). Capture less "
                  "(pointers or references to state that "
                  "outlives the call), or box it yourself before the call, e.g. "
                  "[p = std::make_unique<State>(...)] { ... } or a std::function (both allocate, "
                  "so not in a signal handler)");
    static_assert(alignof(Fn) <= kAlignment,
                  "InlineCall: the callable needs more than pointer alignment");
    static_assert(std::is_nothrow_constructible_v<Fn, F>,
                  "InlineCall: storing the callable could throw (e.g. copying a std::function or "
                  "a std::string allocates). Pass it as an rvalue (std::move), or capture only "
                  "what copies without throwing");
    static_assert(std::is_nothrow_move_constructible_v<Fn>,
                  "InlineCall: the callable must be nothrow move constructible");
    static_assert(std::is_nothrow_destructible_v<Fn>,
                  "InlineCall: the callable must be nothrow destructible");
    reset();
    ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(fn));
    ops_ = &kOps<Fn>;
  }

  // Destroys the held callable, if any.
  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Calls the held callable (which must be there); lets through whatever it throws.
  void operator()() { ops_->invoke(storage_); }

 private:
  struct Ops {
    void (*invoke)(void* self);
    void (*relocate)(void* from, void* to) noexcept;
    void (*destroy)(void* self) noexcept;
  };

  template <typename Fn>
  static constexpr Ops kOps{
      [](void* self) { std::invoke(*static_cast<Fn*>(self)); },
      [](void* from, void* to) noexcept {
        ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
        static_cast<Fn*>(from)->~Fn();
      },
      [](void* self) noexcept { static_cast<Fn*>(self)->~Fn(); },
  };

  void take(InlineCall& other) noexcept {
    if (other.ops_ == nullptr) return;
    other.ops_->relocate(other.storage_, storage_);
    ops_ = std::exchange(other.ops_, nullptr);
  }

  const Ops* ops_ = nullptr;
  alignas(kAlignment) std::byte storage_[Capacity];
};

}  // namespace daemonkit::core
