// A std::vector whose data starts on a cache line. Large blocks from plain malloc start 16 bytes
// past a page boundary, so every 64-byte vector load or store into them would straddle two cache
// lines; the kernels' scratch buffers (packed GEMM panels, the inference arena) use this instead.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace pdyolo {

template <class T, size_t Alignment = 64>
struct AlignedAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = AlignedAllocator<U, Alignment>;
  };
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U, Alignment>&) {}  // NOLINT: converting, as allocators must
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(Alignment))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(Alignment)); }
  template <class U>
  bool operator==(const AlignedAllocator<U, Alignment>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U, Alignment>&) const { return false; }
};

template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace pdyolo
