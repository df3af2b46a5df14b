// Wall-clock latency of repeated runs (what `pdyolo bench` reports and `pdyolo prune` measures
// before and after, and searches with --target-latency): P50/P95/P99 and the mean, in ms.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "pdyolo/graph/executor.hpp"
#include "pdyolo/graph/fuse.hpp"

namespace pdyolo::graph {

struct Latency {
  std::vector<double> sorted_ms;  // every timed run, ascending
  double mean_ms = 0;
  // The p-quantile, taken as ort_bench.js takes it (element ⌊p·n⌋).
  double quantile(double p) const {
    return sorted_ms[std::min(sorted_ms.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted_ms.size())))];
  }
  double p50() const { return quantile(0.5); }
};

// Times `runs` calls of `run` after `warmup` untimed ones.
inline Latency time_runs(const std::function<void()>& run, int runs, int warmup) {
  PDYOLO_CHECK(runs > 0 && warmup >= 0, "latency: runs must be positive and warm-up runs not negative");
  for (int i = 0; i < warmup; ++i) run();
  Latency l;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    l.sorted_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    l.mean_ms += l.sorted_ms.back() / runs;
  }
  std::sort(l.sorted_ms.begin(), l.sorted_ms.end());
  return l;
}

// The latency of a model as it is deployed: a fused copy on the planned executor, `batch` random
// images of size×size (with the threads set by the caller).
inline Latency planned_latency(const Graph& g, int64_t size, int64_t batch = 1, int runs = 20, int warmup = 3) {
  Graph fused = g.clone();
  fuse(fused);
  fused.eval();
  NoGradGuard no_grad;
  Generator gen(0);
  const Tensor images = Tensor::uniform({batch, fused.channels(0), size, size}, 0.0f, 1.0f, gen);
  Executor engine(fused);
  return time_runs([&] { engine.run(images); }, runs, warmup);
}

}  // namespace pdyolo::graph
