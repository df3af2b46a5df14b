// A cache of freed large host blocks for tensor storage. A training step frees and allocates the
// same activation and gradient sizes every step; without the cache large blocks go back to the
// system (glibc maps and unmaps them, or trims its heap) and the next step pays a page fault and
// the zeroing of each 4 KiB page again: about 6 400 faults per yolov7-tiny step at 320², batch 8,
// none with the cache (perf stat), and the step ran 6 % faster (bench/RESULTS.md).
//
// Off by default: freed blocks kept for sizes that never come back would only raise the peak
// memory of a one-off job (loading a model for inference). A training loop turns it on for its
// duration with HostBlockCacheScope. While on, blocks of at least kMinCachedBytes are kept per
// exact size, up to a limit on the bytes held; smaller blocks go straight to operator new/delete.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace pdyolo {

class HostBlockCache {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kMinCachedBytes = size_t{256} << 10;

  // Never destroyed: tensors in static storage may be freed after any other static's destructor.
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache;
    return *cache;
  }

  // `bytes` must be the same when the block is released.
  void* allocate(size_t bytes) {
    if (bytes >= kMinCachedBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* block = it->second.back();
        it->second.pop_back();
        held_bytes_ -= bytes;
        return block;
      }
    }
    return ::operator new(bytes, std::align_val_t(kAlignment));
  }

  void release(void* block, size_t bytes) {
    if (bytes >= kMinCachedBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_bytes_ + bytes <= limit_bytes_) {
        free_[bytes].push_back(block);
        held_bytes_ += bytes;
        return;
      }
    }
    ::operator delete(block, std::align_val_t(kAlignment));
  }

  // Frees every held block (e.g. before a long-lived allocation of other sizes).
  void trim() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* block : blocks) ::operator delete(block, std::align_val_t(kAlignment));
    free_.clear();
    held_bytes_ = 0;
  }

  // Frees every held block, then keeps at most `bytes` from now on.
  void set_limit(size_t bytes) {
    trim();
    std::lock_guard<std::mutex> lock(mutex_);
    limit_bytes_ = bytes;
  }

  size_t limit() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_bytes_;
  }

  size_t held_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_bytes_;
  }

 private:
  HostBlockCache() = default;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // exact size → free blocks
  size_t held_bytes_ = 0;
  size_t limit_bytes_ = 0;
};

// Caches freed blocks (up to `limit_bytes` held) while it lives; then frees them and restores the
// limit before it (off, unless scopes are nested).
class HostBlockCacheScope {
 public:
  // A step of yolov7-tiny at 320², batch 8 frees 0.7 GB for the next to reuse; yolov7 at 640²,
  // batch 16 frees 19 GB, of which this much is kept.
  static constexpr size_t kTrainingLimitBytes = size_t{4} << 30;

  explicit HostBlockCacheScope(size_t limit_bytes = kTrainingLimitBytes) : previous_(HostBlockCache::instance().limit()) {
    HostBlockCache::instance().set_limit(limit_bytes);
  }
  ~HostBlockCacheScope() { HostBlockCache::instance().set_limit(previous_); }
  HostBlockCacheScope(const HostBlockCacheScope&) = delete;
  HostBlockCacheScope& operator=(const HostBlockCacheScope&) = delete;

 private:
  size_t previous_;
};

}  // namespace pdyolo
