// Run-time CPU feature detection, so one binary uses AVX-512 where it exists and AVX2 elsewhere.
#pragma once

namespace pdyolo::kernels::cpu {

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define PDYOLO_X86_KERNELS 1
inline bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
inline bool cpu_has_avx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#else
inline bool cpu_has_avx2_fma() { return false; }
inline bool cpu_has_avx512f() { return false; }
#endif

}  // namespace pdyolo::kernels::cpu
