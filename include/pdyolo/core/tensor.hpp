// Tensor: a shared handle to (storage, shape, strides, offset, dtype) plus autograd metadata.
// Copying a Tensor copies the handle, not the data — like PyTorch. Views share storage.
//
// Member functions that build graph nodes (reshape, permute, backward, …) are defined in
// autograd/ and ops/; include "pdyolo/pdyolo.hpp" to get all of them.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "pdyolo/core/dtype.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/core/rng.hpp"
#include "pdyolo/core/shape.hpp"
#include "pdyolo/core/storage.hpp"

namespace pdyolo {

namespace autograd {
struct Node;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;           // in elements
  int64_t offset = 0;      // in elements, into storage
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;              // accumulated gradient (leaf tensors)
  std::shared_ptr<autograd::Node> grad_fn;       // the op that produced this tensor, if recorded
};

class Tensor;
Tensor contiguous_copy(const Tensor& t);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ---------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = cpu_device()) {
    check_shape(shape, "Tensor::empty");
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(std::move(impl));
  }
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32) {
    Tensor t = empty(shape, dtype);
    t.fill_(value);
    return t;
  }
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32) { return full(shape, 0.0, dtype); }
  static Tensor ones(const Shape& shape, DType dtype = DType::f32) { return full(shape, 1.0, dtype); }
  static Tensor scalar(float value) { return full({}, value); }

  // Copies `values` (row-major) into a new tensor of `shape`; T picks the dtype.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    PDYOLO_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ",
                 values.size(), " values do not fill shape ", shape_str(shape));
    Tensor t = empty(shape, dtype_of<T>::value);
    if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
    return t;
  }
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
    return from_vector<float>(values, shape);
  }

  static Tensor uniform(const Shape& shape, float low, float high,
                        Generator& gen = default_generator()) {
    Tensor t = empty(shape);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform(low, high);
    return t;
  }
  static Tensor normal(const Shape& shape, float mean = 0.0f, float stddev = 1.0f,
                       Generator& gen = default_generator()) {
    Tensor t = empty(shape);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal(mean, stddev);
    return t;
  }

  // ---- queries -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "Tensor::size")]; }
  int64_t numel() const { return shape_numel(shape()); }
  int64_t storage_offset() const { return checked().offset; }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  bool is_contiguous() const {
    const Shape& s = shape();
    const Shape& st = strides();
    int64_t expected = 1;
    for (size_t i = s.size(); i-- > 0;) {
      if (s[i] != 1 && st[i] != expected) return false;
      expected *= s[i];
    }
    return true;
  }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

  // Pointer to element [0, 0, …] (honours the view's offset). Checks dtype and device.
  template <class T>
  T* data() const {
    PDYOLO_CHECK(dtype() == dtype_of<T>::value, "Tensor::data: tensor holds ", dtype_name(dtype()),
                 ", not ", dtype_name(dtype_of<T>::value));
    PDYOLO_CHECK(device().type == DeviceType::cpu, "Tensor::data: tensor is on ", device().str());
    return static_cast<T*>(impl_->storage->data()) + impl_->offset;
  }
  void* raw_data() const {
    return static_cast<char*>(checked().storage->data()) + impl_->offset * dtype_size(impl_->dtype);
  }

  // Element at a multi-index (any dtype), as double. For tests and printing, not hot loops.
  double at(const std::vector<int64_t>& index) const {
    PDYOLO_CHECK(static_cast<int64_t>(index.size()) == dim(), "Tensor::at: index has ",
                 index.size(), " entries for a ", dim(), "-D tensor");
    int64_t off = 0;
    for (size_t i = 0; i < index.size(); ++i) {
      PDYOLO_CHECK(index[i] >= 0 && index[i] < shape()[i], "Tensor::at: index ", index[i],
                   " out of range for axis ", i, " of size ", shape()[i]);
      off += index[i] * strides()[i];
    }
    return element_as_double(off);
  }
  float item() const {
    PDYOLO_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_str(shape()),
                 " has ", numel(), " elements, not 1");
    return static_cast<float>(element_as_double(0));
  }
  // All elements in row-major order, converted to float.
  std::vector<float> to_vector() const {
    Tensor c = (is_contiguous() ? *this : contiguous_copy(*this)).to(DType::f32);
    const float* p = c.data<float>();
    return std::vector<float>(p, p + c.numel());
  }

  // ---- views and copies (defined in ops/shape.hpp; differentiable) ---------------------------
  Tensor reshape(const Shape& shape) const;
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t axis, int64_t start, int64_t length) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0 on expanded axes)
  Tensor contiguous() const;
  Tensor clone() const;

  // Element-type and device conversion: a copy (not recorded by autograd), or this tensor itself
  // when it already has that dtype / device.
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place, never recorded ------------------------------------------------------------
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // same shape; converts dtype

  // ---- autograd (defined in autograd/engine.hpp) -------------------------------------------
  bool requires_grad() const { return checked().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }
  Tensor grad() const { return Tensor(checked().grad); }
  void zero_grad() { checked().grad.reset(); }
  Tensor detach() const;
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;

  std::string str(int64_t edge_items = 3) const;

 private:
  TensorImpl& checked() const {
    PDYOLO_CHECK(impl_ != nullptr, "use of an undefined (default-constructed) Tensor");
    return *impl_;
  }
  double element_as_double(int64_t element_offset) const {
    PDYOLO_CHECK(device().type == DeviceType::cpu, "reading elements of a ", device().str(), " tensor");
    const char* base = static_cast<const char*>(impl_->storage->data());
    return visit_dtype(dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* p = reinterpret_cast<const T*>(base) + impl_->offset + element_offset;
      return convert_value<double>(*p);
    });
  }

  std::shared_ptr<TensorImpl> impl_;
};

namespace detail {

// Calls fn(row, offset) in parallel for every row of a strided view's innermost dimension: row
// is its index among the view's rows (row·inner in a contiguous copy), offset where it starts,
// in elements from the view's first element.
template <class Fn>
void for_each_strided_row(const Shape& shape, const Shape& strides, const Fn& fn) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t inner = shape.back();
  const int64_t rows = inner == 0 ? 0 : shape_numel(shape) / inner;
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rest = row, offset = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        offset += (rest % shape[d]) * strides[d];
        rest /= shape[d];
      }
      fn(row, offset);
    }
  });
}

// Copies a strided view into a contiguous destination of the same element size.
template <class T>
void copy_strided(const T* src, const Shape& shape, const Shape& strides, T* dst) {
  if (shape.empty()) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = shape.back(), inner_stride = strides.back();
  for_each_strided_row(shape, strides, [&](int64_t row, int64_t offset) {
    T* out = dst + row * inner;
    const T* in = src + offset;
    if (inner_stride == 1) {
      std::memcpy(out, in, inner * sizeof(T));
    } else {
      for (int64_t i = 0; i < inner; ++i) out[i] = in[i * inner_stride];
    }
  });
}

}  // namespace detail

// Copy of `t` with contiguous layout (no autograd). Shared by contiguous(), clone() and to().
inline Tensor contiguous_copy(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  visit_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(t.impl()->storage->data()) + t.storage_offset();
    detail::copy_strided(src, t.shape(), t.strides(), static_cast<T*>(out.raw_data()));
  });
  return out;
}

inline Tensor Tensor::to(DType target) const {
  PDYOLO_CHECK(device().type == DeviceType::cpu, "Tensor::to(dtype): tensor is on ", device().str());
  if (target == dtype()) return *this;
  Tensor src = is_contiguous() ? *this : contiguous_copy(*this);
  Tensor out = empty(shape(), target);
  const int64_t n = numel();
  visit_dtype(dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(target, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* in = static_cast<const From*>(src.raw_data());
      To* o = static_cast<To*>(out.raw_data());
      for (int64_t i = 0; i < n; ++i) o[i] = convert_value<To>(in[i]);
    });
  });
  return out;
}

inline Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  const size_t nbytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (device().type == DeviceType::cpu) {
    Tensor src = is_contiguous() ? *this : contiguous_copy(*this);
    Tensor out = empty(shape(), dtype(), target);
    allocator_for(target).copy_from_host(out.raw_data(), src.raw_data(), nbytes, target.index);
    return out;
  }
  PDYOLO_CHECK(target.type == DeviceType::cpu && is_contiguous(),
               "Tensor::to: copies between devices need a contiguous tensor and one side on cpu");
  Tensor out = empty(shape(), dtype(), target);
  allocator_for(device()).copy_to_host(out.raw_data(), raw_data(), nbytes, device().index);
  return out;
}

inline Tensor& Tensor::fill_(double value) {
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = convert_value<T>(value);
    T* base = static_cast<T*>(impl_->storage->data()) + impl_->offset;
    if (is_contiguous()) {
      std::fill(base, base + numel(), v);
    } else {  // walk the view element by element
      const int64_t n = numel();
      for (int64_t i = 0; i < n; ++i) {
        int64_t rest = i, off = 0;
        for (int64_t d = dim() - 1; d >= 0; --d) {
          off += (rest % shape()[d]) * strides()[d];
          rest /= shape()[d];
        }
        base[off] = v;
      }
    }
  });
  return *this;
}

inline Tensor& Tensor::copy_(const Tensor& src) {
  PDYOLO_CHECK(src.shape() == shape(), "Tensor::copy_: source shape ", shape_str(src.shape()),
               " differs from destination shape ", shape_str(shape()));
  PDYOLO_CHECK(is_contiguous(), "Tensor::copy_: destination must be contiguous");
  Tensor converted = src.to(dtype());
  Tensor c = converted.is_contiguous() ? converted : contiguous_copy(converted);
  if (c.impl() != impl()) std::memmove(raw_data(), c.raw_data(), numel() * dtype_size(dtype()));
  return *this;
}

inline std::string Tensor::str(int64_t edge_items) const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device().str() << (requires_grad() ? ", requires_grad" : "") << ")\n";
  if (device().type != DeviceType::cpu) return os.str();
  const bool is_float = dtype() == DType::f32 || dtype() == DType::f16;
  // Fixed notation unless the magnitudes call for scientific (as PyTorch does).
  double max_abs = 0.0;
  if (is_float)
    for (float v : to_vector())
      if (std::isfinite(v)) max_abs = std::max(max_abs, static_cast<double>(std::fabs(v)));
  const bool scientific = max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3);
  std::function<void(int64_t, int64_t, int)> print_axis = [&](int64_t axis, int64_t off, int indent) {
    if (axis == dim()) {
      const double v = element_as_double(off);
      if (!is_float) os << static_cast<long long>(v);
      else if (scientific) os << std::setw(11) << std::setprecision(4) << std::scientific << v;
      else os << std::setw(10) << std::setprecision(4) << std::fixed << v;
      return;
    }
    const int64_t n = shape()[axis];
    const bool summarize = n > 2 * edge_items;
    os << '[';
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && i == edge_items) {
        os << (axis + 1 == dim() ? " ..., " : " ...,\n" + std::string(indent + 1, ' '));
        i = n - edge_items;
      }
      print_axis(axis + 1, off + i * strides()[axis], indent + 1);
      if (i + 1 < n) os << (axis + 1 == dim() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    os << ']';
  };
  print_axis(0, 0, 0);
  return os.str();
}

inline std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace pdyolo
