// CUDA runtime entry points declared in include/pdyolo/backend/cuda_api.hpp: device discovery,
// allocation and host<->device copies. Every CUDA error becomes a pdyolo::Error naming the call.
#include <cuda_runtime.h>

#include "pdyolo/backend/cuda_api.hpp"

namespace pdyolo::cuda {
namespace {
void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw_error("cuda: ", what, " failed: ", cudaGetErrorString(status));
}
}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

void* device_malloc(size_t nbytes, int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  void* ptr = nullptr;
  check(cudaMalloc(&ptr, nbytes), "cudaMalloc");
  return ptr;
}

void device_free(void* ptr, int device) {
  if (!ptr) return;
  cudaSetDevice(device);
  cudaFree(ptr);  // no throw: called from destructors
}

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  check(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  check(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
}

}  // namespace pdyolo::cuda
