// Liveness: how a callback frame learns that the object it runs in was destroyed by whoever it
// called out to. The object holds a Liveness (one pointer); each frame that calls out puts a
// Liveness::Guard on its stack, and the object's destructor marks every guard still standing.
// A shared_ptr<bool> did the same with a heap block per object (32 bytes of every idle
// connection, twice) and two atomic reference counts per event; this costs a pointer per
// object and two stores per frame. Single-threaded, like the loop that uses it: guards of one
// Liveness nest as the frames do.
#pragma once

namespace daemonkit::core::detail {

class Liveness {
 public:
  class Guard {
   public:
// Storing a guard's address in the Liveness is the point; the destructor takes it out again,
// which GCC's dangling-pointer analysis does not follow.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
    explicit Guard(Liveness& of) : of_(&of), next_(of.top_) { of.top_ = this; }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    ~Guard() {
      if (of_ != nullptr) of_->top_ = next_;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    // False once the object holding the Liveness was destroyed.
    [[nodiscard]] bool alive() const { return of_ != nullptr; }
    explicit operator bool() const { return alive(); }

   private:
    friend class Liveness;
    Liveness* of_;
    Guard* next_;
  };

  Liveness() = default;
  ~Liveness() {
    for (Guard* g = top_; g != nullptr; g = g->next_) g->of_ = nullptr;
  }
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;

 private:
  Guard* top_ = nullptr;
};

}  // namespace daemonkit::core::detail
