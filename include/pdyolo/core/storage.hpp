// Storage: a 64-byte-aligned, reference-counted block of bytes shared by a tensor and its views.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "pdyolo/backend/cuda_api.hpp"
#include "pdyolo/core/device.hpp"
#include "pdyolo/core/error.hpp"

namespace pdyolo {

constexpr size_t kStorageAlignment = 64;

class Storage {
 public:
  Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
    // Round up so vector kernels may read a full cache line past the end of small tensors.
    const size_t padded = (nbytes + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment +
                          kStorageAlignment;
    if (device.type == DeviceType::cpu) {
      data_ = ::operator new(padded, std::align_val_t(kStorageAlignment));
    } else {
      data_ = cuda::device_malloc(padded, device.index);
    }
  }
  ~Storage() {
    if (device_.type == DeviceType::cpu) {
      ::operator delete(data_, std::align_val_t(kStorageAlignment));
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
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace pdyolo
