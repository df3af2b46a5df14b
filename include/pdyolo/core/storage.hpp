// Storage: a 64-byte-aligned, reference-counted block of bytes shared by a tensor and its views.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "pdyolo/backend/cuda_api.hpp"
#include "pdyolo/core/device.hpp"
#include "pdyolo/core/error.hpp"
#include "pdyolo/core/host_block_cache.hpp"

namespace pdyolo {

constexpr size_t kStorageAlignment = HostBlockCache::kAlignment;

class Storage {
 public:
  Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
    if (device.type == DeviceType::cpu) {
      data_ = HostBlockCache::instance().allocate(padded_bytes());
    } else {
      data_ = cuda::device_malloc(padded_bytes(), device.index);
    }
  }
  ~Storage() {
    if (device_.type == DeviceType::cpu) {
      HostBlockCache::instance().release(data_, padded_bytes());
    } else {
      cuda::device_free(data_, device_.index);
    }
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  // Bytes allocated: rounded up so vector kernels may read a full cache line past the end of small tensors.
  size_t padded_bytes() const { return (nbytes_ + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment + kStorageAlignment; }

  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace pdyolo
