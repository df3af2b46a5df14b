// Memory of a device type: how tensors on it are allocated, released and copied to and from the
// host. Core knows no backend: the host allocator is core's own, and a backend registers the one for
// its device type (backend/cuda_api.hpp registers CUDA's). A device type with none registered gets a
// clear error naming it.
#pragma once
#include <cstddef>
#include <cstring>

#include "pdyolo/core/device.hpp"
#include "pdyolo/core/error.hpp"
#include "pdyolo/core/host_block_cache.hpp"

namespace pdyolo {

class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(size_t nbytes, int device) = 0;
  virtual void release(void* ptr, size_t nbytes, int device) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes, int device) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes, int device) = 0;
};

// Host memory: aligned blocks from the block cache (core/host_block_cache.hpp).
class HostAllocator final : public DeviceAllocator {
 public:
  void* allocate(size_t nbytes, int) override { return HostBlockCache::instance().allocate(nbytes); }
  void release(void* ptr, size_t nbytes, int) override { HostBlockCache::instance().release(ptr, nbytes); }
  void copy_from_host(void* dst, const void* src, size_t nbytes, int) override { std::memcpy(dst, src, nbytes); }
  void copy_to_host(void* dst, const void* src, size_t nbytes, int) override { std::memcpy(dst, src, nbytes); }
};

namespace detail {
inline DeviceAllocator*& allocator_slot(DeviceType type) {
  static HostAllocator host;
  static DeviceAllocator* slots[] = {&host, nullptr};  // indexed by DeviceType: cpu, cuda
  return slots[static_cast<size_t>(type)];
}
}  // namespace detail

// Makes `allocator` (which must outlive every tensor on that device type) the one for `type`.
inline void register_allocator(DeviceType type, DeviceAllocator* allocator) { detail::allocator_slot(type) = allocator; }

inline DeviceAllocator& allocator_for(Device device) {
  DeviceAllocator* a = detail::allocator_slot(device.type);
  PDYOLO_CHECK(a, "no allocator for device ", device.str(), ": include pdyolo/backend/cuda_api.hpp (and build with -DPDYOLO_CUDA=ON)");
  return *a;
}

}  // namespace pdyolo
