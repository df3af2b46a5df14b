// How far rounding-level changes of the input move the gradients that the loss-parity test
// (tests/test_train.cpp) compares with the reference's: the fixture batch is run through
// yolov7-tiny in training mode, both losses and backward, once as it is and then --copies times
// with every pixel scaled by 1 + u·noise (u uniform in [−1, 1], a new draw per copy). For each
// loss it prints the relative difference from reference.json of the loss, of the first conv's
// gradient norm and of the detect convs' gradient norms, then their minimum, median and maximum
// over the copies. Differences that the noise moves by about as much as they are large measure
// rounding, not a bug; the test's tolerances come from these numbers.
//   grad_sensitivity [--shared DIR] [--copies 30] [--noise 1e-7]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pdyolo/io/npy.hpp"
#include "pdyolo/io/yaml.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/train/loss.hpp"

using namespace pdyolo;

namespace {

// Relative differences from the reference for one run: loss, first conv, detect convs 0–2.
struct Differences {
  double values[5];
};

Differences run_once(const std::string& dir, const Tensor& images, const Tensor& targets, const io::Value& hyp,
                     const io::Value& expected, bool ota) {
  models::YoloModel m = models::load_model(dir + "yolov7-tiny-coco128.pt");
  m.graph.train();
  const graph::DetectOutput out = graph::forward(m.graph, images);
  const train::DetectHead head = train::detect_head(m.graph);
  const train::LossHyp h = train::LossHyp::from_hyp(hyp, 3, head.nc, 320);
  const train::LossResult r = ota ? train::compute_loss_ota(out.raw, targets, head, h, 320) : train::compute_loss(out.raw, targets, head, h);
  r.loss.backward();
  const auto state = m.graph.state_dict();
  auto norm = [&](const std::string& name) {
    double s = 0;
    for (float g : state.at(name).grad().to_vector()) s += static_cast<double>(g) * g;
    return std::sqrt(s);
  };
  auto rel = [](double got, double want) { return std::fabs(got - want) / std::max(std::fabs(want), 1e-12); };
  const auto& detect = expected.find("grad_norm_detect_convs")->items;
  Differences d{};
  d.values[0] = rel(r.loss.item(), expected.find("total")->as_double());
  d.values[1] = rel(norm("model.0.conv.weight"), expected.find("grad_norm_first_conv")->as_double());
  for (int i = 0; i < 3; ++i) d.values[2 + i] = rel(norm("model.77.m." + std::to_string(i) + ".weight"), detect[i].as_double());
  return d;
}

void print_row(const char* label, const double* v) {
  std::printf("%-10s loss %.2e  first conv %.2e  detect %.2e %.2e %.2e\n", label, v[0], v[1], v[2], v[3], v[4]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string shared = std::string(PDYOLO_SOURCE_DIR) + "/../shared";
  int copies = 30;
  double noise = 1e-7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--shared") shared = argv[i + 1];
    else if (flag == "--copies") copies = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--noise") noise = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "grad_sensitivity: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  const std::string dir = shared + "/fixtures/yolov7-tiny-coco128/";
  const io::Value ref = io::load_yaml(dir + "reference.json");
  const io::Value hyp = io::load_yaml(std::string(PDYOLO_SOURCE_DIR) + "/cfg/hyp/hyp.scratch.tiny.yaml");
  const Tensor images = io::load_npy(dir + "loss_images_320.npy"), targets = io::load_npy(dir + "loss_targets.npy");
  Generator gen(1);
  for (bool ota : {false, true}) {
    const io::Value& expected = *ref.find(ota ? "ComputeLossOTA" : "ComputeLoss");
    std::printf("%s, relative difference from the reference\n", ota ? "ComputeLossOTA" : "ComputeLoss");
    print_row("as given", run_once(dir, images, targets, hyp, expected, ota).values);
    std::vector<Differences> runs;
    for (int copy = 0; copy < copies; ++copy) {
      const Tensor scale = Tensor::uniform(images.shape(), static_cast<float>(1 - noise), static_cast<float>(1 + noise), gen);
      runs.push_back(run_once(dir, (images * scale).contiguous(), targets, hyp, expected, ota));
      std::fprintf(stderr, "\r%s copy %d/%d", ota ? "OTA" : "ComputeLoss", copy + 1, copies);
    }
    std::fprintf(stderr, "\n");
    double low[5], middle[5], high[5];
    for (int k = 0; k < 5; ++k) {
      std::vector<double> column;
      for (const Differences& d : runs) column.push_back(d.values[k]);
      std::sort(column.begin(), column.end());
      low[k] = column.front(), middle[k] = column[column.size() / 2], high[k] = column.back();
    }
    print_row("min", low);
    print_row("median", middle);
    print_row("max", high);
  }
}
