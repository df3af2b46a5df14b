// Fast SGEMM: C[M,N] (+)= A[M,K] · B[K,N], cache-blocked with packed panels (the BLIS scheme).
//
//   for each K block (at most kKc rows, see k_block_rows)
//     pack B[k-block, column chunk] into NR-wide panels   (one buffer per thread; stays in L2)
//     for each block of kMcRows rows of A                 (packed once per call; stays in L2)
//       for each NR panel of B                            (stays in L1)
//         for each MR strip of the A block
//           micro-kernel: one MR×NR tile of C, then (last K block) the epilogue: bias, activation
//
// Work is split into (row range × column chunk) tasks handed to threads; each C element is
// computed by exactly one task in a fixed order, so results do not depend on thread timing.
// The micro-kernel is chosen at run time: AVX-512 (8×32), AVX2 (6×16), NEON on AArch64 (8×8),
// or portable C++ (4×16).
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "pdyolo/core/aligned_vector.hpp"
#include "pdyolo/core/error.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/ref/gemm.hpp"
#include "pdyolo/kernels/neon/sgemm_ukernels.hpp"
#include "pdyolo/kernels/x86/gemm_pack.hpp"
#include "pdyolo/kernels/x86/sgemm_ukernels.hpp"

namespace pdyolo::kernels::cpu {

using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                               bool accumulate);

// C tile [MR, NR] ← act(C tile + bias[row]), vectorised for the micro-kernel's ISA; null where the
// portable loop (detail::apply_epilogue) serves.
using TileEpilogueFn = void (*)(float* c, int64_t ldc, const float* bias, ActivationFn act);

struct GemmMicroKernel {
  const char* name;
  int64_t mr, nr;
  MicroKernelFn fn;
  TileEpilogueFn epilogue = nullptr;
};

// Portable 4×16 tile in plain C++; compilers vectorise it for the baseline instruction set.
inline void sgemm_ukernel_generic_4x16(int64_t kc, const float* a, const float* b, float* c,
                                       int64_t ldc, bool accumulate) {
  float acc[4][16] = {};
  for (int64_t k = 0; k < kc; ++k, a += 4, b += 16)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 16; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 16; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + acc[i][j];
}

enum class GemmIsa { generic, avx2, avx512, neon };

inline bool gemm_isa_available(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::generic: return true;
    case GemmIsa::avx2: return cpu_has_avx2_fma();
    case GemmIsa::avx512: return cpu_has_avx512f();
    case GemmIsa::neon:
#ifdef PDYOLO_NEON_KERNELS
      return true;  // NEON is part of every AArch64 CPU
#else
      return false;
#endif
  }
  return false;
}

inline GemmMicroKernel gemm_micro_kernel(GemmIsa isa) {
#ifdef PDYOLO_X86_KERNELS
  if (isa == GemmIsa::avx512) return {"avx512-8x32", 8, 32, x86::sgemm_ukernel_avx512_8x32, x86::sgemm_epilogue_avx512_8x32};
  if (isa == GemmIsa::avx2) return {"avx2-6x16", 6, 16, x86::sgemm_ukernel_avx2_6x16, x86::sgemm_epilogue_avx2_6x16};
#endif
#ifdef PDYOLO_NEON_KERNELS
  if (isa == GemmIsa::neon) return {"neon-8x8", 8, 8, neon::sgemm_ukernel_neon_8x8};
#endif
  (void)isa;
  return {"generic-4x16", 4, 16, sgemm_ukernel_generic_4x16};
}

inline GemmIsa best_gemm_isa() {
  if (gemm_isa_available(GemmIsa::neon)) return GemmIsa::neon;
  if (gemm_isa_available(GemmIsa::avx512)) return GemmIsa::avx512;
  if (gemm_isa_available(GemmIsa::avx2)) return GemmIsa::avx2;
  return GemmIsa::generic;
}

inline GemmIsa& gemm_isa_slot() {
  static GemmIsa isa = best_gemm_isa();
  return isa;
}
inline GemmIsa gemm_isa() { return gemm_isa_slot(); }

// Selects the micro-kernel (tests run each one the CPU has against the reference).
inline void set_gemm_isa(GemmIsa isa) {
  PDYOLO_CHECK(gemm_isa_available(isa), "set_gemm_isa: ", gemm_micro_kernel(isa).name,
               " is not supported by this CPU");
  gemm_isa_slot() = isa;
}

constexpr int64_t kKc = 256;             // largest K block: an NR-wide B panel of kKc rows stays in L1
constexpr int64_t kMcRows = 192;         // rows of A revisited per B panel: kMcRows × kKc floats in L2
constexpr int64_t kMaxChunkCols = 1024;  // column chunk per task: its packed B stays in L2
constexpr int64_t kTasksPerThread = 4;   // enough tasks for dynamic scheduling to balance uneven ones

// Rows per K block: K in ⌈K / kKc⌉ blocks of equal size (288 → 2 × 144, not 256 + 32: a short
// last block would load and store every tile of C again for a few multiply-adds).
inline int64_t k_block_rows(int64_t K) {
  const int64_t blocks = (K + kKc - 1) / kKc;
  return blocks > 0 ? (K + blocks - 1) / blocks : kKc;
}

// A packed for the micro-kernel: per K block of k_block_rows(K) rows, strips of MR rows, k-major, zero-padded
// to whole strips. Convolution weights are packed once at load and reused by every call.
struct PackedA {
  GemmIsa isa = GemmIsa::generic;  // the micro-kernel it was packed for (its MR)
  int64_t M = 0, K = 0, mr = 1;
  AlignedVector<float> data;

  int64_t strips() const { return (M + mr - 1) / mr; }
  // The strip of rows [s·MR, s·MR + MR) for the K block starting at k0 (kc rows long).
  const float* strip(int64_t s, int64_t k0, int64_t kc) const { return data.data() + strips() * mr * k0 + s * mr * kc; }
};

// Packs rows [k0, k0 + kc) and columns [col0, col0 + cols) of B as ⌈cols / nr⌉ consecutive panels,
// panel q at out + q·kc·nr holding kc rows of nr floats (columns col0 + q·nr …), the last one
// zero-padded. A plain matrix or a convolution's input (implicit im2col) packs itself.
// A non-owning reference to the packing callable (std::function would allocate for larger
// captures on every call): valid while the callable passed in lives, i.e. for one sgemm_packed call.
class PackB {
 public:
  template <class F>
  PackB(const F& pack)  // NOLINT: implicit, so a lambda can be passed directly
      : callable_(&pack), call_([](const void* f, int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
          (*static_cast<const F*>(f))(k0, kc, col0, cols, nr, out);
        }) {}
  void operator()(int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) const {
    call_(callable_, k0, kc, col0, cols, nr, out);
  }

 private:
  const void* callable_;
  void (*call_)(const void*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);
};

// What is applied to each finished tile of C: a bias per row, then an activation.
struct GemmEpilogue {
  const float* bias = nullptr;  // [M] or null
  ActivationFn act;
  bool active() const { return bias != nullptr || act.kind != Activation::identity; }
};

namespace detail {

// A[rows, K block] → strips of MR rows, k-major, zero-padded to a whole strip.
inline void pack_a_strip(const MatrixView& A, int64_t row0, int64_t rows, int64_t k0, int64_t kc,
                         int64_t mr, float* out) {
#ifdef PDYOLO_X86_KERNELS
  if (mr == 8 && gemm_isa() == GemmIsa::avx512) {  // the 8×32 micro-kernel's strips, vectorised
    if (A.col_stride == 1) return x86::pack_a_strip_rows_avx512(A.data, A.row_stride, row0, rows, k0, kc, out);
    if (A.row_stride == 1) return x86::pack_a_strip_columns_avx512(A.data, A.col_stride, row0, rows, k0, kc, out);
  }
#endif
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t i = 0; i < mr; ++i) out[k * mr + i] = i < rows ? A.at(row0 + i, k0 + k) : 0.0f;
}

// B[K block, cols] → panels of NR columns, k-major, zero-padded to a whole panel.
inline void pack_b_panel(const MatrixView& B, int64_t k0, int64_t kc, int64_t col0, int64_t cols,
                         int64_t nr, float* out) {
  for (int64_t k = 0; k < kc; ++k) {
    float* dst = out + k * nr;
    if (B.col_stride == 1) {
      std::memcpy(dst, B.data + (k0 + k) * B.row_stride + col0, cols * sizeof(float));
    } else {
      for (int64_t j = 0; j < cols; ++j) dst[j] = B.at(k0 + k, col0 + j);
    }
    for (int64_t j = cols; j < nr; ++j) dst[j] = 0.0f;
  }
}

// Writes `count` values of packed row k starting at chunk column j, across panel boundaries:
// src[t · stride] for t < count, or zeros when src is null.
// Whole panel rows (n = NR, the common case) are copied with a constant size so the compiler
// emits a few vector moves instead of a memmove call.
inline bool copy_panel_row(const float* src, float* dst, int64_t n) {
  switch (n) {
    case 32: std::memcpy(dst, src, 32 * sizeof(float)); return true;
    case 16: std::memcpy(dst, src, 16 * sizeof(float)); return true;
    case 8: std::memcpy(dst, src, 8 * sizeof(float)); return true;
    default: return false;
  }
}

inline void put_packed_run(float* out, int64_t kc, int64_t nr, int64_t k, int64_t j, const float* src, int64_t stride, int64_t count) {
  while (count > 0) {
    const int64_t lane = j % nr, n = std::min(count, nr - lane);
    float* dst = out + (j / nr) * kc * nr + k * nr + lane;
    if (!src) {
      std::fill(dst, dst + n, 0.0f);
    } else if (stride != 1) {
      for (int64_t t = 0; t < n; ++t) dst[t] = src[t * stride];
    } else if (!copy_panel_row(src, dst, n)) {
      std::copy(src, src + n, dst);
    }
    if (src) src += n * stride;
    j += n;
    count -= n;
  }
}

// The panels of B[K block, col0 .. col0 + cols) one after another (see PackB); rows of a
// row-major B are copied whole, run by run.
inline void pack_b_panels(const MatrixView& B, int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
#ifdef PDYOLO_X86_KERNELS
  if (nr == 32 && gemm_isa() == GemmIsa::avx512) {  // the 8×32 micro-kernel's panels, vectorised
    if (B.col_stride == 1) return x86::pack_rows_avx512(B.data, B.row_stride, k0, kc, col0, cols, out);
    if (B.row_stride == 1) return x86::pack_transposed_panels_avx512(B.data, B.col_stride, k0, kc, col0, cols, out, kc * 32);
  }
#endif
  if (B.col_stride != 1) {
    for (int64_t q = 0; q * nr < cols; ++q) pack_b_panel(B, k0, kc, col0 + q * nr, std::min(nr, cols - q * nr), nr, out + q * kc * nr);
    return;
  }
  const int64_t padded = (cols + nr - 1) / nr * nr;
  for (int64_t k = 0; k < kc; ++k) {
    put_packed_run(out, kc, nr, k, 0, B.data + (k0 + k) * B.row_stride + col0, 1, cols);
    put_packed_run(out, kc, nr, k, cols, nullptr, 0, padded - cols);
  }
}

// Packing buffers are reused across calls (per thread), so steady-state GEMMs allocate nothing.
inline PackedA& thread_packed_a() {
  thread_local PackedA packed;
  return packed;
}
// This thread's buffer for packed B panels (and the phase rows of kernels/cpu/conv_rows.hpp), at
// least `floats` long.
inline float* thread_pack_buffer_b(int64_t floats) {
  thread_local AlignedVector<float> buffer;
  if (buffer.size() < static_cast<size_t>(floats)) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

// C tile [rows, cols] (row stride ldc) ← act(C + bias[row]).
inline void apply_epilogue(const GemmEpilogue& ep, int64_t row0, int64_t rows, int64_t cols, float* c, int64_t ldc) {
  with_activation(ep.act, [&](auto f, auto) {
    for (int64_t i = 0; i < rows; ++i) {
      const float b = ep.bias ? ep.bias[row0 + i] : 0.0f;
      float* row = c + i * ldc;
      for (int64_t j = 0; j < cols; ++j) row[j] = f(row[j] + b);
    }
  });
}

}  // namespace detail

// Packs A [M, K] for the micro-kernel of the selected ISA (in parallel over strips and K blocks).
inline void pack_a(const MatrixView& A, int64_t M, int64_t K, PackedA& out) {
  out.isa = gemm_isa();
  out.mr = gemm_micro_kernel(out.isa).mr;
  out.M = M, out.K = K;
  const int64_t strips = out.strips(), kb = k_block_rows(K), k_blocks = (K + kb - 1) / kb;
  if (out.data.size() < static_cast<size_t>(strips * out.mr * K)) out.data.resize(static_cast<size_t>(strips * out.mr * K));
  parallel_tasks(strips * k_blocks, [&](int64_t task) {
    const int64_t p = task / strips, s = task % strips;
    const int64_t k0 = p * kb, kc = std::min(kb, K - k0);
    detail::pack_a_strip(A, s * out.mr, std::min(out.mr, M - s * out.mr), k0, kc, out.mr,
                         out.data.data() + strips * out.mr * k0 + s * out.mr * kc);
  });
}

// C[M, N] (+)= A · B with A already packed (for the selected ISA) and B packed panel by panel as
// the tasks need it; the epilogue runs on each tile of C once its last K block is done.
inline void sgemm_packed(const PackedA& A, int64_t N, const PackB& pack_b, float* C, int64_t ldc, bool accumulate,
                         const GemmEpilogue& epilogue = {}) {
  const int64_t M = A.M, K = A.K;
  if (M <= 0 || N <= 0) return;
  PDYOLO_CHECK(A.isa == gemm_isa(), "sgemm_packed: A was packed for ", gemm_micro_kernel(A.isa).name, ", not the selected ",
               gemm_micro_kernel(gemm_isa()).name);
  const GemmMicroKernel uk = gemm_micro_kernel(A.isa);
  const int64_t mr = uk.mr, nr = uk.nr;
  const int64_t strips = A.strips();
  const int64_t kb = k_block_rows(K), k_blocks = (K + kb - 1) / kb;
  const bool with_epilogue = epilogue.active();

  // Tasks: column chunks of whole panels, split by rows too when there are too few chunks to
  // balance (each row split repacks its B chunk, so splits keep at least 64 rows). Called from
  // inside a parallel region (one thread's share of a batch), the tasks run on this thread alone,
  // so only the cache-sized column chunks remain.
  const int64_t panels = (N + nr - 1) / nr;
  const int64_t wanted_tasks = in_parallel_region() ? 1 : kTasksPerThread * num_threads();
  const int64_t panels_per_chunk =
      std::clamp<int64_t>((panels + wanted_tasks - 1) / wanted_tasks, 1, kMaxChunkCols / nr);
  const int64_t chunks = (panels + panels_per_chunk - 1) / panels_per_chunk;
  const int64_t row_splits =
      std::clamp<int64_t>((wanted_tasks + chunks - 1) / chunks, 1, std::max<int64_t>(1, strips * mr / 64));
  const int64_t strips_per_block = std::max<int64_t>(1, kMcRows / mr);

  parallel_tasks(chunks * row_splits, [&](int64_t task) {
    const int64_t chunk = task / row_splits, split = task % row_splits;
    const int64_t col0 = chunk * panels_per_chunk * nr;
    const int64_t cols = std::min(panels_per_chunk * nr, N - col0);
    const int64_t strip0 = strips * split / row_splits, strip1 = strips * (split + 1) / row_splits;
    const int64_t chunk_panels = (cols + nr - 1) / nr;
    float* packed_b = detail::thread_pack_buffer_b(kb * chunk_panels * nr);
    float tile[32 * 32];  // edge tiles are computed here, then the valid part is copied out

    for (int64_t p = 0; p < k_blocks; ++p) {
      const int64_t k0 = p * kb, kc = std::min(kb, K - k0);
      const bool acc = accumulate || p > 0, last_block = p + 1 == k_blocks;
      pack_b(k0, kc, col0, cols, nr, packed_b);
      for (int64_t block = strip0; block < strip1; block += strips_per_block) {
        const int64_t block_end = std::min(strip1, block + strips_per_block);
        for (int64_t q = 0; q < chunk_panels; ++q) {
          const float* b_panel = packed_b + q * kc * nr;
          const int64_t j0 = col0 + q * nr, ncols = std::min(nr, N - j0);
          for (int64_t s = block; s < block_end; ++s) {
            const float* a_strip = A.strip(s, k0, kc);
            const int64_t i0 = s * mr, nrows = std::min(mr, M - i0);
            float* c = C + i0 * ldc + j0;
            const bool full = nrows == mr && ncols == nr;
            if (full) {
              uk.fn(kc, a_strip, b_panel, c, ldc, acc);
            } else {
              uk.fn(kc, a_strip, b_panel, tile, nr, false);
              for (int64_t i = 0; i < nrows; ++i)
                for (int64_t j = 0; j < ncols; ++j)
                  c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + tile[i * nr + j];
            }
            if (!with_epilogue || !last_block) continue;
            if (full && uk.epilogue) uk.epilogue(c, ldc, epilogue.bias ? epilogue.bias + i0 : nullptr, epilogue.act);
            else detail::apply_epilogue(epilogue, i0, nrows, ncols, c, ldc);
          }
        }
      }
    }
  });
}

// C[M, N] (+)= A[M, K] · B[K, N] for plain strided matrices.
inline void sgemm(int64_t M, int64_t N, int64_t K, MatrixView A, MatrixView B, float* C, int64_t ldc,
                  bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  PackedA& packed = detail::thread_packed_a();  // A is the small operand here: packed whole, each call
  pack_a(A, M, K, packed);
  sgemm_packed(packed, N, [&B](int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
    detail::pack_b_panels(B, k0, kc, col0, cols, nr, out);
  }, C, ldc, accumulate);
}

}  // namespace pdyolo::kernels::cpu
