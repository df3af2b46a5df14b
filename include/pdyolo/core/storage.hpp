// Storage: a 64-byte-aligned, reference-counted block of bytes shared by a tensor and its views,
// from its device's allocator (core/allocator.hpp).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "pdyolo/core/allocator.hpp"

namespace pdyolo {

constexpr size_t kStorageAlignment = HostBlockCache::kAlignment;

class Storage {
 public:
  Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
    data_ = allocator_for(device).allocate(padded_bytes(), device.index);
  }
  ~Storage() { allocator_for(device_).release(data_, padded_bytes(), device_.index); }
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
