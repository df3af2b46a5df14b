// Where a sliding window's tap stays inside the input, shared by the convolution packers and the
// separable max-pools: lets their inner loops run without bounds checks.
#pragma once
#include <algorithm>
#include <cstdint>

namespace pdyolo::kernels::cpu {

// The output positions [lo, hi) of [0, out_size) whose input index o · stride + offset lies in
// [0, size); the others read padding.
struct ValidOutputs {
  int64_t lo, hi;
};
inline ValidOutputs valid_outputs(int64_t size, int64_t out_size, int64_t stride, int64_t offset) {
  int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t hi = size - offset <= 0 ? 0 : (size - offset - 1) / stride + 1;
  lo = std::min(lo, out_size);
  hi = std::max(lo, std::min(hi, out_size));
  return {lo, hi};
}

}  // namespace pdyolo::kernels::cpu
