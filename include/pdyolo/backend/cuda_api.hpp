// The CUDA entry points pdyolo calls: declarations only. Their definitions are compiled from
// kernels/cuda/*.cu into the pdyolo_cuda library when CMake's PDYOLO_CUDA is on (which defines
// PDYOLO_WITH_CUDA for users of that library). Without it, each entry point throws a clear error.
#pragma once
#include <cstddef>

#include "pdyolo/core/allocator.hpp"
#include "pdyolo/core/error.hpp"

namespace pdyolo::cuda {

#ifdef PDYOLO_WITH_CUDA
int device_count();  // 0 when the driver finds no GPU
void* device_malloc(size_t nbytes, int device);
void device_free(void* ptr, int device);
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);
#else
[[noreturn]] inline void no_cuda(const char* what) {
  throw_error("cuda: ", what, " needs CUDA, but pdyolo was built without it (configure with -DPDYOLO_CUDA=ON)");
}
inline int device_count() { return 0; }
inline void* device_malloc(size_t, int) { no_cuda("allocating device memory"); }
inline void device_free(void*, int) {}
inline void copy_host_to_device(void*, const void*, size_t, int) { no_cuda("copying to the device"); }
inline void copy_device_to_host(void*, const void*, size_t, int) { no_cuda("copying from the device"); }
#endif

// CUDA memory as core sees it (core/allocator.hpp), registered for DeviceType::cuda wherever this
// header is included (the umbrella header and backend/backend.hpp include it).
class Allocator final : public DeviceAllocator {
 public:
  void* allocate(size_t nbytes, int device) override { return device_malloc(nbytes, device); }
  void release(void* ptr, size_t, int device) override { device_free(ptr, device); }
  void copy_from_host(void* dst, const void* src, size_t nbytes, int device) override { copy_host_to_device(dst, src, nbytes, device); }
  void copy_to_host(void* dst, const void* src, size_t nbytes, int device) override { copy_device_to_host(dst, src, nbytes, device); }
};

inline bool register_cuda_allocator() {
  static Allocator allocator;
  register_allocator(DeviceType::cuda, &allocator);
  return true;
}
inline const bool cuda_allocator_registered = register_cuda_allocator();

}  // namespace pdyolo::cuda
