// The convolutions of one yolov7-tiny training step (320×320, batch 8), kernel by kernel:
// forward, input gradient and weight gradient of each distinct layer shape, the best of --reps
// runs each, weighted by how often the shape occurs in the network. Per-layer minima are far
// steadier on a shared machine than whole-step times, so this is the tool for A/B comparisons of
// the training conv kernels; bench_train_step gives the end-to-end number.
//   bench_train_convs [--batch-size 8] [--reps 5] [--threads 2] [--layer TEXT] [--json]
// (--layer: only the layers whose name, as printed, contains TEXT)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pdyolo/pdyolo.hpp"

using namespace pdyolo;

namespace {

// A convolution of yolov7-tiny at 320×320: input channels and size, output channels, kernel,
// stride (padding k / 2), and how many layers of the network have this shape.
struct TrainConv {
  int64_t c, h, oc, k, s, count;
};

// Every conv2d call of bench_train_step's forward pass (cfg/training/yolov7-tiny.yaml), grouped by shape.
const TrainConv kLayers[] = {
    {3, 320, 32, 3, 2, 1},   {32, 160, 64, 3, 2, 1},  {64, 80, 32, 1, 1, 2},   {32, 80, 32, 3, 1, 2},
    {128, 80, 64, 1, 1, 1},  {64, 40, 64, 1, 1, 2},   {64, 40, 64, 3, 1, 2},   {256, 40, 128, 1, 1, 1},
    {128, 40, 32, 1, 1, 2},  {32, 40, 32, 3, 1, 2},   {128, 40, 64, 1, 1, 2},  {64, 40, 128, 3, 2, 1},
    {64, 40, 128, 3, 1, 1},  {128, 40, 255, 1, 1, 1}, {128, 20, 128, 1, 1, 2}, {128, 20, 128, 3, 1, 2},
    {512, 20, 256, 1, 1, 1}, {256, 20, 128, 1, 1, 3}, {256, 20, 64, 1, 1, 4},  {64, 20, 64, 3, 1, 4},
    {128, 20, 64, 1, 1, 1},  {128, 20, 256, 3, 2, 1}, {128, 20, 256, 3, 1, 1}, {256, 20, 255, 1, 1, 1},
    {256, 10, 256, 1, 1, 2}, {256, 10, 256, 3, 1, 2}, {1024, 10, 512, 1, 1, 1}, {512, 10, 256, 1, 1, 4},
    {1024, 10, 256, 1, 1, 1}, {256, 10, 128, 1, 1, 1}, {512, 10, 128, 1, 1, 2}, {128, 10, 128, 3, 1, 2},
    {256, 10, 512, 3, 1, 1}, {512, 10, 255, 1, 1, 1},
};

kernels::Conv2dGeometry geometry(const TrainConv& l, int64_t batch) {
  const int64_t pad = l.k / 2, out = (l.h + 2 * pad - l.k) / l.s + 1;
  return {batch, l.c, l.h, l.h, l.oc, l.k, l.k, out, out, l.s, l.s, pad, pad, 1, 1, 1};
}

std::string layer_name(const TrainConv& l) {
  char name[64];
  std::snprintf(name, sizeof name, "%lldx%lld%s %lld-%lld @%lld", static_cast<long long>(l.k), static_cast<long long>(l.k),
                l.s == 2 ? "s2" : "", static_cast<long long>(l.c), static_cast<long long>(l.oc), static_cast<long long>(l.h));
  return name;
}

template <class Fn>
double best_ms(int reps, const Fn& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 8;
  int reps = 5, threads = 2;
  bool json = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--json") json = true;
    else if (i + 1 < argc && flag == "--batch-size") batch = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--reps") reps = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--layer") only = argv[++i];
    else {
      std::fprintf(stderr, "bench_train_convs: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (batch < 1 || reps < 1 || threads < 1) {
    std::fprintf(stderr, "bench_train_convs: --batch-size, --reps and --threads must be at least 1\n");
    return 2;
  }
  set_num_threads(threads);
  double total[3] = {0, 0, 0};
  int timed = 0;
  if (!json) std::printf("%-26s %5s %10s %10s %10s  (ms, best of %d; x count)\n", "layer", "count", "forward", "d input", "d weight", reps);
  for (const TrainConv& l : kLayers) {
    const std::string name = layer_name(l);
    if (name.find(only) == std::string::npos) continue;
    const kernels::Conv2dGeometry g = geometry(l, batch);
    Generator gen(0);
    const Tensor x = Tensor::uniform({batch, l.c, l.h, l.h}, -1, 1, gen);
    const Tensor w = Tensor::uniform({l.oc, l.c, l.k, l.k}, -1, 1, gen);
    const Tensor bias = Tensor::uniform({l.oc}, -1, 1, gen);
    const Tensor dy = Tensor::uniform({batch, l.oc, g.out_h, g.out_w}, -1, 1, gen);
    Tensor y = Tensor::empty(dy.shape()), dx = Tensor::empty(x.shape()), dw = Tensor::empty(w.shape());
    const bool input_layer = l.c == 3;  // the image needs no gradient
    const double ms[3] = {
        best_ms(reps, [&] { kernels::cpu::conv2d_forward(g, x.data<float>(), w.data<float>(), bias.data<float>(), y.data<float>()); }),
        input_layer ? 0.0 : best_ms(reps, [&] { kernels::cpu::conv2d_backward_input(g, dy.data<float>(), w.data<float>(), dx.data<float>()); }),
        best_ms(reps, [&] { kernels::cpu::conv2d_backward_weight(g, x.data<float>(), dy.data<float>(), dw.data<float>()); }),
    };
    for (int p = 0; p < 3; ++p) total[p] += ms[p] * static_cast<double>(l.count);
    ++timed;
    if (!json) std::printf("%-26s %5lld %10.2f %10.2f %10.2f\n", name.c_str(), static_cast<long long>(l.count), ms[0], ms[1], ms[2]);
  }
  if (timed == 0) {
    std::fprintf(stderr, "bench_train_convs: no layer name contains \"%s\"\n", only.c_str());
    return 2;
  }
  const double sum = total[0] + total[1] + total[2];
  if (!json) std::printf("%-26s %5s %10.1f %10.1f %10.1f   all %.1f ms\n", "per training step", "", total[0], total[1], total[2], sum);
  std::printf("{\"forward_ms\":%.2f,\"input_grad_ms\":%.2f,\"weight_grad_ms\":%.2f,\"total_ms\":%.2f}\n", total[0], total[1],
              total[2], sum);
}
