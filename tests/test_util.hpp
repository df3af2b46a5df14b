// Helpers shared by the test suites.
#pragma once
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "pdyolo/pdyolo.hpp"

namespace pdyolo::test {

// Largest |a − b| relative to the largest |b| (1 when b is all zeros).
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector(), bv = b.to_vector();
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < av.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(av[i] - bv[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(bv[i])));
  }
  return diff / std::max(scale, 1.0);
}

// Runs fn and returns the pdyolo::Error message it threw ("" when it threw nothing).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ../shared next to the repository (or $PDYOLO_SHARED); "" when absent.
inline std::string shared_dir() {
  const char* env = std::getenv("PDYOLO_SHARED");
  const std::string dir = env ? env : std::string(PDYOLO_SOURCE_DIR) + "/../shared";
  struct stat st {};
  return (stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ? dir : "";
}

// Every backend with kernels for f32, read from the dispatch table (backend/dispatch.hpp), so a
// backend gets tested the day it registers a kernel.
inline std::vector<Backend> compute_backends() {
  std::vector<Backend> found;
  for (Backend b : kAllBackends)
    for (OpKind op : kAllOpKinds)
      if (op != OpKind::copy && supports(op, b, DType::f32)) {
        found.push_back(b);
        break;
      }
  return found;
}

// Every GEMM micro-kernel this CPU can run (fast kernels are tested with each).
inline std::vector<kernels::cpu::GemmIsa> available_gemm_isas() {
  namespace cpu = kernels::cpu;
  std::vector<cpu::GemmIsa> isas;
  for (cpu::GemmIsa isa : {cpu::GemmIsa::generic, cpu::GemmIsa::avx2, cpu::GemmIsa::avx512, cpu::GemmIsa::neon})
    if (cpu::gemm_isa_available(isa)) isas.push_back(isa);
  return isas;
}

// Selects a micro-kernel for the scope, then goes back to the best one.
struct IsaScope {
  explicit IsaScope(kernels::cpu::GemmIsa isa) { kernels::cpu::set_gemm_isa(isa); }
  ~IsaScope() { kernels::cpu::set_gemm_isa(kernels::cpu::best_gemm_isa()); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
};

inline std::string temp_path(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/pdyolo_test_" + name;
}

// Writes `text` to `path` as is (bytes, no newline added), creating the folders on the way.
inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace pdyolo::test
