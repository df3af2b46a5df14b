// `pdyolo bench`: inference latency of a model on this machine — P50/P95/P99, images/s, peak RSS,
// and with --profile where the time goes, per layer and per op.
#pragma once
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/graph/latency.hpp"
#include "pdyolo/models/weights.hpp"

namespace pdyolo::cli {

// Peak resident set size of this process, in MB (10⁶ bytes, as ort_bench.js reports RSS).
inline double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0 / 1e6;  // Linux reports kilobytes
}

// The profile of the timed runs (core/op_profile.hpp): time per op, then the slowest steps.
inline void print_profile(const OpProfile& profile, int runs, int64_t batch, double total_ms) {
  const std::vector<OpProfile::Step>& steps = profile.steps();
  std::map<std::string, std::pair<double, double>> by_op;  // op → (ms per run, GFLOP per run)
  for (const auto& s : steps) by_op[s.op].first += s.seconds * 1e3 / runs, by_op[s.op].second += s.gflop * static_cast<double>(batch);
  std::printf("\ntime per op (ms per run, share, GFLOP/s):\n");
  for (const auto& [op, v] : by_op)
    std::printf("  %-10s %8.2f  %5.1f%%  %s\n", op.c_str(), v.first, 100.0 * v.first / total_ms,
                v.second > 0 ? std::to_string(static_cast<int>(v.second / (v.first / 1e3))).c_str() : "");
  std::vector<OpProfile::Step> sorted = steps;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  std::printf("\nslowest steps (ms per run, share, GFLOP, GFLOP/s):\n");
  for (size_t i = 0; i < std::min<size_t>(15, sorted.size()); ++i) {
    const double ms = sorted[i].seconds * 1e3 / runs, gflop = sorted[i].gflop * static_cast<double>(batch);
    std::printf("  %-20s %-9s %7.2f  %5.1f%%  %6.3f  %6.0f\n", sorted[i].name.c_str(), sorted[i].op.c_str(), ms, 100.0 * ms / total_ms,
                gflop, gflop > 0 ? gflop / (ms / 1e3) : 0.0);
  }
}

inline const CommandSpec& bench_spec() {
  static const CommandSpec spec{"bench",
                                "inference latency (P50/P95/P99), images/s and peak RSS; --profile: time per layer and op",
                                {weights_flag(), cfg_flag(), nc_flag(), img_size_flag(), {"--batch-size", "B", "1", "images per run"},
                                 threads_flag(), {"--runs", "N", "100", "timed runs"},
                                 {"--warmup", "N", "5", "untimed runs first"},
                                 {"--executor", "planned|graph", "planned", "the planned executor or the autograd forward"},
                                 {"--profile", "", "", "time per layer and op (either executor)"},
                                 {"--int8-kernel", "K", "best", "int8 models: the conv kernel (best, amx, avx512-vnni, avx2, neon-sdot, neon or generic)"},
                                 {"--json", "", "", "one JSON line of the figures"}}};
  return spec;
}

inline int run_bench(const Args& args) {
  const int64_t size = args.integer("--img-size"), batch = args.integer("--batch-size");
  const int runs = static_cast<int>(args.integer("--runs")), warmup = static_cast<int>(args.integer("--warmup"));
  const std::string executor = args.str("--executor");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  PDYOLO_CHECK(batch > 0 && runs > 0 && warmup >= 0, "--batch-size and --runs must be positive, --warmup not negative");
  PDYOLO_CHECK(executor == "planned" || executor == "graph", "--executor must be planned or graph, got '", executor, "'");
  args.apply_threads();
  LoadedModel loaded = model_from_args(args, std::nullopt, 0, /*int8_ok=*/true);
  models::YoloModel& model = loaded.model;  // (not a structured binding: lambdas capture it)
  const kernels::cpu::QconvIsa isa = int8_kernel_from_args(args);
  const std::string source = loaded.source + (loaded.int8 ? " (int8, " + int8_runtime_name(isa) + ")" : "");
  PDYOLO_CHECK(!loaded.int8 || executor == "planned", "an int8 model runs on the planned int8 executor: no --executor graph");
  graph::fuse(model.graph);
  model.graph.eval();
  NoGradGuard no_grad;
  Generator gen(0);
  const Tensor images = Tensor::uniform({batch, model.in_channels(), size, size}, 0.0f, 1.0f, gen);
  graph::Executor engine(model.graph);
  std::optional<quant::IntegerModel> integer;
  if (loaded.int8) integer.emplace(model.graph, *loaded.int8, Backend::cpu, isa);
  auto run_once = [&] {
    if (integer) integer->run(images, nullptr, true, /*raw=*/false);  // (as engine.run: decoded boxes only)
    else if (executor == "planned") engine.run(images);
    else graph::forward(model.graph, images);
  };
  for (int i = 0; i < warmup; ++i) run_once();
  std::optional<OpProfile> profile;  // (after the warm-up: the profile counts timed runs only)
  if (args.has("--profile")) profile.emplace();
  const graph::Latency latency = graph::time_runs(run_once, runs, 0);
  const double mean = latency.mean_ms, p50 = latency.p50(), p95 = latency.quantile(0.95), p99 = latency.quantile(0.99);
  const double fps = 1e3 * batch / mean;
  std::printf("%s: %lldx%lld batch %lld, %d threads, %s executor, %d runs after %d warm-up\n", source.c_str(),
              static_cast<long long>(size), static_cast<long long>(size), static_cast<long long>(batch), num_threads(), executor.c_str(),
              runs, warmup);
  std::printf("latency ms: P50 %.2f  P95 %.2f  P99 %.2f  mean %.2f   %.1f images/s   %.0f GFLOP/s   peak RSS %.0f MB\n", p50, p95, p99,
              mean, fps, model.graph.conv_flops(size) * batch / (mean / 1e3) / 1e9, peak_rss_mb());
  if (executor == "planned" && !integer)
    std::printf("activation arena %.1f MB (%.1f MB without buffer sharing)\n", engine.arena_bytes() / 1e6, engine.unplanned_bytes() / 1e6);
  if (profile) print_profile(*profile, runs, batch, mean);
  if (args.has("--json"))
    std::printf("{\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"fps\":%.2f,\"peak_rss_mb\":%.1f}\n", p50, p95, p99, fps, peak_rss_mb());
  return 0;
}

}  // namespace pdyolo::cli
