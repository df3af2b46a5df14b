// Backends, the kinds of ops that have kernels, and the preferred backend. What exists for which
// backend and dtype, and how an op reaches its kernels, is backend/dispatch.hpp.
#pragma once
#include "pdyolo/backend/cuda_api.hpp"
#include "pdyolo/core/dtype.hpp"
#include "pdyolo/core/error.hpp"

namespace pdyolo {

enum class Backend : uint8_t {
  ref,   // scalar reference kernels (kernels/ref): the specification and the test oracle
  cpu,   // fast CPU kernels (kernels/cpu + kernels/x86 micro-kernels picked at run time)
  cuda,  // GPU kernels (kernels/cuda) — none are registered yet
};
inline constexpr Backend kAllBackends[] = {Backend::ref, Backend::cpu, Backend::cuda};

enum class OpKind : uint8_t {
  copy,              // strided copy / dtype conversion
  binary,            // add, sub, mul, div, minimum, maximum (broadcasting)
  unary,             // exp, log, sigmoid, silu, … and their backward maps
  reduce,            // sum / mean over all or one axis
  softmax,           // softmax, log_softmax
  matmul,
  conv2d,
  batch_norm2d,
  max_pool2d,
  upsample_nearest,
  reorg,             // space-to-depth in the reference's phase order
};
inline constexpr OpKind kAllOpKinds[] = {OpKind::copy,   OpKind::binary,       OpKind::unary,      OpKind::reduce,
                                         OpKind::softmax, OpKind::matmul,      OpKind::conv2d,     OpKind::batch_norm2d,
                                         OpKind::max_pool2d, OpKind::upsample_nearest, OpKind::reorg};

inline const char* backend_name(Backend b) {
  switch (b) {
    case Backend::ref: return "ref";
    case Backend::cpu: return "cpu";
    case Backend::cuda: return "cuda";
  }
  return "?";
}

inline const char* op_kind_name(OpKind op) {
  switch (op) {
    case OpKind::copy: return "copy";
    case OpKind::binary: return "binary";
    case OpKind::unary: return "unary";
    case OpKind::reduce: return "reduce";
    case OpKind::softmax: return "softmax";
    case OpKind::matmul: return "matmul";
    case OpKind::conv2d: return "conv2d";
    case OpKind::batch_norm2d: return "batch_norm2d";
    case OpKind::max_pool2d: return "max_pool2d";
    case OpKind::upsample_nearest: return "upsample_nearest";
    case OpKind::reorg: return "reorg";
  }
  return "?";
}

// The backend ops prefer when it supports them (tests switch to Backend::ref to get the oracle).
inline Backend& preferred_backend_slot() {
  static Backend preferred = Backend::cpu;
  return preferred;
}
inline Backend preferred_backend() { return preferred_backend_slot(); }

// Sets the preferred backend for its lifetime.
class BackendScope {
 public:
  explicit BackendScope(Backend b) : previous_(preferred_backend_slot()) { preferred_backend_slot() = b; }
  ~BackendScope() { preferred_backend_slot() = previous_; }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  Backend previous_;
};

}  // namespace pdyolo
