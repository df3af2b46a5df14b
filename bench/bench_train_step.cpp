// Training-step throughput: yolov7-tiny (or any config), random weights, one synthetic batch,
// forward + backward + SGD step, in images/s. The loss is the mean square of every raw output map
// (the same synthetic loss bench/torch_train_step.py gives PyTorch), so the number measures the
// network's kernels, not the YOLO loss or the data loader.
// With --profile, also the time per op (forward and backward) over the timed steps.
//   bench_train_step [--cfg FILE] [--img-size 320] [--batch-size 8] [--steps 10] [--warmup 2] [--profile]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pdyolo/core/op_profile.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/yolo.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/ops/reduce.hpp"
#include "pdyolo/train/optim.hpp"

using namespace pdyolo;

// The ops by time, in ms per step and as a share of the mean step.
void print_profile(const OpProfile& profile, int64_t steps, const std::vector<double>& step_seconds) {
  std::vector<std::pair<std::string, OpProfile::Entry>> rows(profile.entries().begin(), profile.entries().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double mean_step = 0, listed = 0;
  for (double s : step_seconds) mean_step += s / static_cast<double>(step_seconds.size());
  std::printf("%-36s %10s %8s %8s\n", "op", "ms/step", "share", "calls");
  for (const auto& [key, e] : rows) {
    const double per_step = e.seconds / static_cast<double>(steps);
    listed += per_step;
    std::printf("%-36s %10.1f %7.1f%% %8lld\n", key.c_str(), per_step * 1e3, 100 * per_step / mean_step,
                static_cast<long long>(e.calls / steps));
  }
  std::printf("%-36s %10.1f %7.1f%%\n", "(not in an op)", (mean_step - listed) * 1e3, 100 * (mean_step - listed) / mean_step);
}

int main(int argc, char** argv) {
  std::string cfg = std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml";
  int64_t size = 320, batch = 8, steps = 10, warmup = 2;
  bool profile = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--profile") {
      profile = true;
      --i;  // takes no value
    } else if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_train_step: %s needs a value\n", flag.c_str());
      return 2;
    } else if (flag == "--cfg") cfg = argv[i + 1];
    else if (flag == "--img-size") size = std::atoll(argv[i + 1]);
    else if (flag == "--batch-size") batch = std::atoll(argv[i + 1]);
    else if (flag == "--steps") steps = std::atoll(argv[i + 1]);
    else if (flag == "--warmup") warmup = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "bench_train_step: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  const HostBlockCacheScope block_cache;  // as train::Trainer does: no page faults on reused activations
  models::YoloModel model = models::build_yolo(models::load_model_config(cfg));
  model.graph.train();
  train::Optimizer sgd(model.graph.parameters(), {0.01, 0.937, 5e-4, true});
  Generator gen(0);
  const Tensor images = Tensor::uniform({batch, 3, size, size}, 0.0f, 1.0f, gen);
  std::vector<double> seconds;
  std::unique_ptr<OpProfile> op_times;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    if (profile && step == warmup) op_times = std::make_unique<OpProfile>();
    const auto t0 = std::chrono::steady_clock::now();
    const graph::DetectOutput out = graph::forward(model.graph, images);
    Tensor loss;
    {
      const OpTimer timer("forward", "(synthetic loss)");
      for (const Tensor& level : out.raw) {
        const Tensor term = mean(level * level);
        loss = loss.defined() ? loss + term : term;
      }
    }
    loss.backward();
    {
      const OpTimer timer("optimizer", "step");
      sgd.step();
      sgd.zero_grad();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step >= warmup) seconds.push_back(s);
  }
  if (op_times) print_profile(*op_times, steps, seconds);
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("%s  %lldx%lld  batch %lld  median step %.1f ms  %.2f img/s\n", cfg.c_str(), static_cast<long long>(size),
              static_cast<long long>(size), static_cast<long long>(batch), median * 1e3, batch / median);
  std::printf("{\"step_ms\":%.2f,\"images_per_s\":%.3f,\"best_step_ms\":%.2f}\n", median * 1e3, batch / median,
              seconds.front() * 1e3);
}
