// Evaluating a detector on a dataset as the reference figures were made: each image letterboxed
// square to img_size (the reference letterbox, INTER_LINEAR from the original), a batch through the
// fused model's planned executor, NMS as the test script calls it, predictions mapped back to original pixels and
// matched against the annotations there. Images that cannot be read are reported and skipped.
#pragma once
#include <functional>
#include "pdyolo/core/progress.hpp"
#include "pdyolo/data/image_io.hpp"
#include "pdyolo/eval/metrics.hpp"
#include "pdyolo/graph/executor.hpp"

namespace pdyolo::eval {

struct EvalOptions {
  int64_t img_size = 640;
  NmsOptions nms{0.001f, 0.65f, true, false, 300, 30000};  // as the reference test script calls NMS
  Protocol protocol = Protocol::coco;
  int64_t batch_size = 8;
  bool progress = true;
};

struct EvalRun {
  Metrics metrics;
  int64_t skipped_images = 0;
  std::vector<std::string> problems;
  double seconds = 0;
};

// Maps boxes from the letterboxed canvas back to original pixels, clipped to the image.
inline void unletterbox(std::vector<Detection>& dets, const data::LetterboxInfo& info, int64_t width, int64_t height) {
  for (Detection& d : dets) {
    d.x1 = std::clamp(static_cast<float>((d.x1 - info.pad_x) / info.gain_x), 0.0f, static_cast<float>(width));
    d.x2 = std::clamp(static_cast<float>((d.x2 - info.pad_x) / info.gain_x), 0.0f, static_cast<float>(width));
    d.y1 = std::clamp(static_cast<float>((d.y1 - info.pad_y) / info.gain_y), 0.0f, static_cast<float>(height));
    d.y2 = std::clamp(static_cast<float>((d.y2 - info.pad_y) / info.gain_y), 0.0f, static_cast<float>(height));
  }
}

// A model as evaluation runs it: letterboxed images [N, C, S, S] in [0, 1] → decoded boxes
// [N, rows, 5 + nc] (what the planned executor, or the integer runtime, returns).
using DetectFn = std::function<Tensor(const Tensor&)>;

// The dataset through `detect`, then NMS and the metrics.
inline EvalRun evaluate_with(const DetectFn& detect, const data::Dataset& ds, const EvalOptions& o) {
  PDYOLO_CHECK(o.img_size > 0 && o.img_size % 32 == 0, "evaluate: img_size must be a positive multiple of 32, got ", o.img_size);
  PDYOLO_CHECK(o.batch_size > 0, "evaluate: batch_size must be positive");
  NoGradGuard no_grad;
  EvalRun run;
  Evaluator evaluator(o.protocol);
  const int64_t n = static_cast<int64_t>(ds.samples.size());
  ProgressBar bar("eval", n, o.progress);
  for (int64_t start = 0; start < n; start += o.batch_size) {
    const int64_t count = std::min(o.batch_size, n - start);
    std::vector<data::Letterboxed> boxed(static_cast<size_t>(count));
    std::vector<Shape> sizes(static_cast<size_t>(count));
    std::vector<std::string> errors(static_cast<size_t>(count));
    parallel_tasks(count, [&](int64_t i) {
      try {
        const data::Image img = data::load_image(ds.samples[start + i].image_path);
        sizes[i] = {img.width, img.height};
        boxed[i] = data::letterbox(img, o.img_size, o.img_size);
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    });
    std::vector<data::Image> batch;
    std::vector<int64_t> index;
    for (int64_t i = 0; i < count; ++i) {
      if (!errors[i].empty()) {
        run.problems.push_back(errors[i]);
        ++run.skipped_images;
        continue;
      }
      batch.push_back(std::move(boxed[i].image));
      index.push_back(i);
    }
    if (!batch.empty()) {
      std::vector<std::vector<Detection>> dets = non_max_suppression(detect(data::images_to_tensor(batch)), o.nms);
      for (size_t b = 0; b < index.size(); ++b) {
        const int64_t i = index[b];
        unletterbox(dets[b], boxed[i].info, sizes[i][0], sizes[i][1]);
        evaluator.add_image(dets[b], ds.samples[start + i].boxes);
      }
    }
    bar.update(start + count);
  }
  bar.finish();
  run.metrics = evaluator.compute();
  run.seconds = bar.elapsed();
  return run;
}

// Runs the planned executor (graph/executor.hpp) — what `pdyolo bench` times and a deployment
// runs — on a fused copy of the model, so the mAP is that of the deployed path.
inline EvalRun evaluate(const graph::Graph& model, const data::Dataset& ds, const EvalOptions& o) {
  graph::Graph fused = model.clone();
  graph::fuse(fused);
  fused.eval();
  graph::Executor executor(fused);
  return evaluate_with([&executor](const Tensor& images) { return executor.run(images).decoded; }, ds, o);
}

}  // namespace pdyolo::eval
