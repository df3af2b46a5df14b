// Small training fixtures shared by the training and distillation suites: a synthetic VOC folder,
// quick run options, yolov7-tiny for two classes, the tiny hyperparameters.
#pragma once
#include <filesystem>
#include <fstream>

#include "pdyolo/viz/draw.hpp"
#include "pdyolo/train/trainer.hpp"
#include "test_util.hpp"

namespace pdyolo::test {


// Six 64×64 images with a red and a blue rectangle each, as a VOC folder.
inline data::Dataset synthetic_dataset(const std::string& root) {
  namespace fs = std::filesystem;
  fs::remove_all(root);
  for (const char* d : {"/JPEGImages", "/Annotations", "/ImageSets/Main"}) fs::create_directories(root + d);
  Generator gen(1);
  std::string list;
  const viz::Color colors[2] = {{230, 40, 40}, {40, 40, 230}};
  for (int i = 0; i < 6; ++i) {
    data::Image img(64, 64, 110);
    std::string objects;
    for (int k = 0; k < 2; ++k) {
      const int cls = (i + k) % 2, w = 16 + static_cast<int>(gen.randint(14)), h = 16 + static_cast<int>(gen.randint(14));
      const int x = k == 0 ? static_cast<int>(gen.randint(32 - w / 2)) : 32 + static_cast<int>(gen.randint(32 - w));
      const int y = static_cast<int>(gen.randint(64 - h));
      viz::fill_rect(img, x, y, x + w, y + h, colors[cls]);
      objects += "<object><name>" + std::string(cls ? "blue" : "red") + "</name><bndbox><xmin>" + std::to_string(x + 1) + "</xmin><ymin>" +
                 std::to_string(y + 1) + "</ymin><xmax>" + std::to_string(x + w) + "</xmax><ymax>" + std::to_string(y + h) + "</ymax></bndbox></object>";
    }
    const std::string id = "s" + std::to_string(i);
    data::save_image(root + "/JPEGImages/" + id + ".png", img);
    std::ofstream(root + "/Annotations/" + id + ".xml") << "<annotation><size><width>64</width><height>64</height></size>" << objects << "</annotation>";
    list += id + "\n";
  }
  std::ofstream(root + "/ImageSets/Main/train.txt") << list;
  std::ofstream(root + "/classes.txt") << "red\nblue\n";
  return data::load_voc(root, {"train"});
}

inline train::TrainOptions small_run(const std::string& out, int64_t epochs) {
  train::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 3;
  o.img_size = 64;
  o.out_dir = out;
  o.workers = 0;
  o.progress = false;
  o.evaluate_each_epoch = false;
  o.cache_images = true;
  return o;
}

inline models::YoloModel tiny_model(uint64_t seed = 5) {
  return models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 2), {false, seed});
}

inline io::Value tiny_hyp() { return io::load_yaml(std::string(PDYOLO_SOURCE_DIR) + "/cfg/hyp/hyp.scratch.tiny.yaml"); }

}  // namespace pdyolo::test
