// Backends and the one question every op asks before running: which backend runs me?
//
// supports(op, backend, dtype) is the single source of truth about what exists. Tests and
// benchmarks enumerate it; nothing pretends. An op calls select_backend() once and switches on it.
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
};

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
  }
  return "?";
}

inline bool supports(OpKind op, Backend backend, DType dtype) {
  switch (backend) {
    case Backend::ref:
      return op == OpKind::copy || dtype == DType::f32;
    case Backend::cpu:
      if (dtype != DType::f32) return false;
      return op == OpKind::binary || op == OpKind::unary || op == OpKind::matmul || op == OpKind::conv2d ||
             op == OpKind::batch_norm2d || op == OpKind::max_pool2d || op == OpKind::upsample_nearest;
    case Backend::cuda:
      return false;
  }
  return false;
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

// The preferred backend if it supports the op, else the reference kernels.
inline Backend select_backend(OpKind op, DType dtype) {
  if (supports(op, preferred_backend(), dtype)) return preferred_backend();
  PDYOLO_CHECK(supports(op, Backend::ref, dtype), op_kind_name(op), ": no kernel for dtype ",
               dtype_name(dtype), " (compute ops run on f32; convert with .to(DType::f32))");
  return Backend::ref;
}

}  // namespace pdyolo
