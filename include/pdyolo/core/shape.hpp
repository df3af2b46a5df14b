// Shapes and strides: plain vectors of int64, at most kMaxDims long.
#pragma once
#include <cstdint>
#include <vector>

#include "pdyolo/core/error.hpp"

namespace pdyolo {

using Shape = std::vector<int64_t>;  // sizes, outermost first; {} is a scalar
constexpr int kMaxDims = 6;

inline int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// The element count of a shape read from a file, checked before anything is allocated or read: no
// negative dimension, and a product small enough that its size in bytes cannot overflow (at most
// 2^48 elements, far beyond any model or image). Zero dimensions count as 1 in that bound: a tensor
// with no elements still gets contiguous strides, the products of its trailing dimensions, and
// [0, 2^40, 2^40] would overflow them. Errors name `where`.
inline int64_t checked_numel(const Shape& shape, const std::string& where) {
  constexpr int64_t kMaxElements = int64_t{1} << 48;
  int64_t bound = 1;  // product of max(d, 1): bounds numel and every stride
  bool empty = false;
  for (int64_t d : shape) {
    PDYOLO_CHECK(d >= 0, where, ": shape ", shape_str(shape), " has a negative dimension");
    PDYOLO_CHECK(d == 0 || bound <= kMaxElements / d, where, ": shape ", shape_str(shape),
                 " has more than 2^48 elements (zero dimensions counted as 1)");
    if (d == 0) empty = true;
    else bound *= d;
  }
  return empty ? 0 : bound;
}

inline Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

inline void check_shape(const Shape& shape, const char* where) {
  PDYOLO_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), where, ": shape ", shape_str(shape),
               " has ", shape.size(), " dimensions; pdyolo tensors have at most ", kMaxDims);
  for (int64_t s : shape) PDYOLO_CHECK(s >= 0, where, ": negative size in shape ", shape_str(shape));
}

// Maps a possibly negative axis (-1 = last) into [0, ndim).
inline int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  PDYOLO_CHECK(axis >= -ndim && axis < ndim, op, ": axis ", axis, " is out of range for a ", ndim,
               "-D tensor");
  return axis < 0 ? axis + ndim : axis;
}

// Shape of broadcasting a with b (NumPy rules), or an error naming the op and both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    PDYOLO_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace pdyolo
