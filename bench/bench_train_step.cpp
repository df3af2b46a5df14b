// Training-step throughput: yolov7-tiny (or any config), random weights, one synthetic batch,
// forward + backward + SGD step, in images/s. The loss is the mean square of every raw output map
// (the same synthetic loss bench/torch_train_step.py gives PyTorch), so the number measures the
// network's kernels, not the YOLO loss or the data loader.
//   bench_train_step [--cfg FILE] [--img-size 320] [--batch-size 8] [--steps 10] [--warmup 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pdyolo/models/yolo.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/ops/reduce.hpp"
#include "pdyolo/train/optim.hpp"

using namespace pdyolo;

int main(int argc, char** argv) {
  std::string cfg = std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml";
  int64_t size = 320, batch = 8, steps = 10, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--cfg") cfg = argv[i + 1];
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
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const graph::DetectOutput out = model.graph.forward(images);
    Tensor loss;
    for (const Tensor& level : out.raw) {
      const Tensor term = mean(level * level);
      loss = loss.defined() ? loss + term : term;
    }
    loss.backward();
    sgd.step();
    sgd.zero_grad();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step >= warmup) seconds.push_back(s);
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("%s  %lldx%lld  batch %lld  median step %.1f ms  %.2f img/s\n", cfg.c_str(), static_cast<long long>(size),
              static_cast<long long>(size), static_cast<long long>(batch), median * 1e3, batch / median);
  std::printf("{\"step_ms\":%.2f,\"images_per_s\":%.3f}\n", median * 1e3, batch / median);
}
