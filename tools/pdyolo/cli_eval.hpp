// `pdyolo eval` and `pdyolo detect`.
#pragma once
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/eval/report.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/models/weights.hpp"

namespace pdyolo::cli {

inline LoadedModel load_for_inference(const Args& args) {
  args.required("--weights");
  return model_from_args(args, std::nullopt, 0, /*int8_ok=*/true);
}

inline const CommandSpec& eval_spec() {
  static const CommandSpec spec{"eval",
                                "mAP of a model on a dataset (dataset YAML or VOC folder), on the planned executor",
                                {weights_flag(), cfg_flag("a config for a plain state dict"), {"--data", "DATA", "", "dataset YAML or VOC folder"},
                                 {"--split", "NAME", "val", "the split to evaluate"}, img_size_flag(),
                                 {"--conf-thres", "T", "0.001", "confidence threshold"}, {"--iou-thres", "T", "0.65", "NMS IoU threshold"},
                                 {"--protocol", "coco|voc07|voc12", "coco", "the AP protocol"}, {"--batch-size", "B", "8", "images per run"},
                                 {"--out", "DIR", "", "write metrics.json and pr_curve.png there"},
                                 {"--json", "", "", "one JSON line with the headline numbers"}, no_progress_flag()}};
  return spec;
}

inline int run_eval(const Args& args) {
  eval::EvalOptions o;
  o.img_size = args.integer("--img-size");
  o.nms.conf_thres = args.real("--conf-thres");
  o.nms.iou_thres = args.real("--iou-thres");
  o.batch_size = args.integer("--batch-size");
  o.progress = !args.has("--no-progress");
  const std::string protocol = args.str("--protocol");
  o.protocol = eval::parse_protocol(protocol);
  const data::Dataset ds = data::load_dataset(args.required("--data"), args.str("--split"));
  PDYOLO_CHECK(!ds.samples.empty(), args.str("--data"), ": the split has no usable images");
  const LoadedModel loaded = load_for_inference(args);
  PDYOLO_CHECK(loaded.model.nc() == static_cast<int64_t>(ds.names.size()), "the model has ", loaded.model.nc(),
               " classes but the dataset ", ds.names.size());
  const InferenceFn infer = inference_of(loaded);
  if (loaded.int8) std::printf("%s: int8, on the %s\n", loaded.source.c_str(), int8_runtime_name().c_str());
  const eval::EvalRun run = eval::evaluate_with([&infer](const Tensor& images) { return infer(images, false).decoded; }, ds, o);
  eval::print_class_table(std::cout, run.metrics, ds.names);
  std::printf("%lld images in %.1f s (%.1f images/s), protocol %s\n", static_cast<long long>(run.metrics.images), run.seconds,
              run.metrics.images / std::max(run.seconds, 1e-9), protocol.c_str());
  ds.report(std::cerr);
  for (const std::string& p : run.problems) std::cerr << "warning: " << p << "\n";
  if (run.skipped_images) std::cerr << "skipped " << run.skipped_images << " unreadable image(s)\n";
  if (args.has("--out")) {
    const std::string dir = args.str("--out");
    std::filesystem::create_directories(dir);
    const std::string json = eval::metrics_json(run.metrics, ds.names, protocol);
    io::write_file_atomic(dir + "/metrics.json", [&](std::ostream& out) { out << json << "\n"; });
    data::save_image(dir + "/pr_curve.png", eval::plot_pr_curve(run.metrics));
    std::printf("wrote %s/metrics.json and %s/pr_curve.png\n", dir.c_str(), dir.c_str());
  }
  if (args.has("--json"))
    std::printf("{\"map50\":%.5f,\"map50_95\":%.5f,\"precision\":%.5f,\"recall\":%.5f,\"images\":%lld}\n", run.metrics.map50,
                run.metrics.map50_95, run.metrics.precision, run.metrics.recall, static_cast<long long>(run.metrics.images));
  return 0;
}

inline const CommandSpec& detect_spec() {
  static const CommandSpec spec{"detect",
                                "annotate images with a model's detections; writes the images and detections.json",
                                {weights_flag(), cfg_flag("a config for a plain state dict"), {"--source", "IMG|DIR", "", "an image or a folder of them"},
                                 img_size_flag(), {"--conf-thres", "T", "0.25", "confidence threshold"},
                                 {"--iou-thres", "T", "0.45", "NMS IoU threshold"}, {"--out", "DIR", "", "where the results go"},
                                 no_progress_flag()}};
  return spec;
}

inline int run_detect(const Args& args) {
  namespace fs = std::filesystem;
  const int64_t size = args.integer("--img-size");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const eval::NmsOptions nms{args.real("--conf-thres"), args.real("--iou-thres"), false, false, 300, 30000};
  const std::string source = args.required("--source"), out_dir = args.required("--out");
  std::vector<std::string> images;
  if (fs::is_directory(source)) {
    for (const auto& e : fs::directory_iterator(source)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp") images.push_back(e.path().string());
    }
    std::sort(images.begin(), images.end());
  } else {
    PDYOLO_CHECK(fs::exists(source), source, ": no such file or directory");
    images.push_back(source);
  }
  PDYOLO_CHECK(!images.empty(), source, ": no images found");
  const LoadedModel loaded = load_for_inference(args);
  const models::YoloModel& model = loaded.model;
  fs::create_directories(out_dir);
  NoGradGuard no_grad;
  const InferenceFn infer = inference_of(loaded);  // the planned executor pdyolo bench times (or the integer runtime)
  std::string json = "[";
  ProgressBar bar("detect", static_cast<int64_t>(images.size()), !args.has("--no-progress"));
  int64_t done = 0, total_dets = 0, skipped = 0;
  for (const std::string& path : images) {
    data::Image img;
    try {
      img = data::load_image(path);
    } catch (const Error& e) {
      std::cerr << "warning: " << e.what() << ", skipped\n";
      ++skipped;
      bar.update(++done);
      continue;
    }
    const data::Letterboxed lb = data::letterbox(img, size, size);
    std::vector<eval::Detection> dets = eval::non_max_suppression(infer(data::images_to_tensor({lb.image}), false).decoded, nms)[0];
    eval::unletterbox(dets, lb.info, img.width, img.height);
    const std::string name = fs::path(path).filename().string();
    json += std::string(json.size() > 1 ? "," : "") + "{\"image\":" + io::json_quote(name) + ",\"width\":" + std::to_string(img.width) +
            ",\"height\":" + std::to_string(img.height) + ",\"detections\":[";
    const int scale = img.width >= 800 ? 2 : 1;
    for (size_t k = 0; k < dets.size(); ++k) {
      const eval::Detection& d = dets[k];
      const std::string label = eval::class_name(model.names, d.cls);
      char score[16];
      std::snprintf(score, sizeof score, "%.2f", d.score);
      const viz::Color color = viz::class_color(d.cls);
      viz::draw_rect(img, d.x1, d.y1, d.x2, d.y2, color, 2 * scale);
      const std::string caption = label + " " + score;
      const int64_t tw = viz::text_width(caption, scale);
      const int64_t ty = std::max<int64_t>(0, static_cast<int64_t>(d.y1) - viz::text_height(scale) - 2);
      viz::fill_rect(img, static_cast<int64_t>(d.x1), ty, static_cast<int64_t>(d.x1) + tw + 4, ty + viz::text_height(scale) + 2, color);
      viz::draw_text(img, static_cast<int64_t>(d.x1) + 2, ty + 2, caption, {255, 255, 255}, scale);
      char box[160];
      std::snprintf(box, sizeof box, "{\"box\":[%.1f,%.1f,%.1f,%.1f],\"score\":%.4f,\"class\":%lld,\"name\":", d.x1, d.y1, d.x2, d.y2, d.score,
                    static_cast<long long>(d.cls));
      json += std::string(k ? "," : "") + box + io::json_quote(label) + "}";
    }
    json += "]}";
    total_dets += static_cast<int64_t>(dets.size());
    data::save_image(out_dir + "/" + fs::path(name).replace_extension(".jpg").string(), img);
    bar.update(++done, std::to_string(total_dets) + " detections");
  }
  bar.finish();
  json += "]";
  io::write_file_atomic(out_dir + "/detections.json", [&](std::ostream& out) { out << json << "\n"; });
  std::printf("%lld detections in %lld images; annotated images and detections.json in %s\n", static_cast<long long>(total_dets),
              static_cast<long long>(images.size()) - skipped, out_dir.c_str());
  if (skipped) std::cerr << "skipped " << skipped << " unreadable image(s)\n";
  // Nothing could be read: a failure, not an empty result.
  PDYOLO_CHECK(skipped < static_cast<int64_t>(images.size()), source, ": none of the ", images.size(), " image(s) could be read");
  return 0;
}

}  // namespace pdyolo::cli
