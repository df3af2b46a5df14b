// Data-loader throughput on the shared coco128-voc set: images/s of fully augmented training
// batches (mosaic, perspective, HSV, flips, mixup as hyp.scratch.tiny) and of plain letterboxed
// validation batches, for several worker counts.
//   bench_loader [DATA_ROOT] [IMG_SIZE]
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "pdyolo/data/loader.hpp"

using namespace pdyolo;

int main(int argc, char** argv) {
  const std::string root = argc > 1 ? argv[1] : std::string(PDYOLO_SOURCE_DIR) + "/../shared/data/coco128-voc";
  const int64_t size = argc > 2 ? std::atoll(argv[2]) : 320;
  if (!std::filesystem::exists(root)) {
    std::printf("SKIPPED: %s not found\n", root.c_str());
    return 0;
  }
  const data::Dataset ds = data::load_voc(root, {"train2017"});
  const data::AugmentOptions tiny = data::AugmentOptions::from_hyp(io::load_yaml(std::string(PDYOLO_SOURCE_DIR) + "/cfg/hyp/hyp.scratch.tiny.yaml"));
  std::printf("%zu images at %lldx%lld, batch 16, best of 2 epochs\n", ds.samples.size(),
              static_cast<long long>(size), static_cast<long long>(size));
  std::printf("%-28s %8s %8s\n", "mode", "workers", "img/s");
  for (bool augment : {true, false})
    for (int workers : {0, 1, 2}) {
      data::LoaderOptions o;
      o.img_size = size;
      o.batch_size = 16;
      o.workers = workers;
      o.augment = augment;
      o.aug = tiny;
      data::DataLoader loader(ds, o);
      double best = 0;
      for (int epoch = 0; epoch < 2; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        loader.start_epoch(epoch);
        data::Batch b;
        int64_t images = 0;
        while (loader.next(b)) images += b.images.shape()[0];
        best = std::max(best, images / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("%-28s %8d %8.1f\n", augment ? "train (hyp.scratch.tiny)" : "val (letterbox only)", workers, best);
    }
}
