// parallel_for: split [begin, end) into one contiguous chunk per thread (OpenMP when enabled).
// The split depends only on the range and the thread count, so results are deterministic.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pdyolo {

inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(std::max(1, n));
#else
  (void)n;
#endif
}

// Set in threads that already run beside others (data-loading workers), so the kernels they call
// stay on their own thread instead of starting a thread team each.
inline bool& serial_thread_flag() {
  thread_local bool serial = false;
  return serial;
}

class SerialThreadScope {
 public:
  SerialThreadScope() : previous_(serial_thread_flag()) { serial_thread_flag() = true; }
  ~SerialThreadScope() { serial_thread_flag() = previous_; }
  SerialThreadScope(const SerialThreadScope&) = delete;
  SerialThreadScope& operator=(const SerialThreadScope&) = delete;

 private:
  bool previous_;
};

inline bool in_parallel_region() {
#ifdef _OPENMP
  return serial_thread_flag() || omp_in_parallel() != 0;
#else
  return true;
#endif
}

// Calls fn(chunk_begin, chunk_end) on disjoint chunks covering [begin, end). Ranges smaller than
// `grain` (or calls from inside a parallel region) run on the calling thread.
template <class Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = num_threads();
  if (threads <= 1 || n <= grain || in_parallel_region()) {
    fn(begin, end);
    return;
  }
#ifdef _OPENMP
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(chunks))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = begin + n * c / chunks;
    const int64_t hi = begin + n * (c + 1) / chunks;
    if (lo < hi) fn(lo, hi);
  }
#endif
}

}  // namespace pdyolo

namespace pdyolo {

// Runs fn(task) for task in [0, count) on all threads, handing tasks out dynamically. Use it only
// when each task writes disjoint outputs, so the result does not depend on which thread ran it.
template <class Fn>
void parallel_tasks(int64_t count, const Fn& fn) {
  if (count <= 0) return;
  if (count == 1 || num_threads() <= 1 || in_parallel_region()) {
    for (int64_t t = 0; t < count; ++t) fn(t);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < count; ++t) fn(t);
#endif
}

}  // namespace pdyolo
