// The training / validation data loader: batches of letterboxed or mosaicked images [B, 3, S, S]
// and target rows [image index in batch, class, cx, cy, w, h] (normalised), assembled by worker
// threads ahead of use. Each sample's augmentation draws from a generator seeded by (seed, epoch,
// dataset index), and shuffling by (seed, epoch): the batches are the same whatever the number of
// workers or their timing. An image that cannot be read is reported once (take_problems), counted,
// and replaced wherever it is drawn by the next readable image of the dataset, as evaluation skips it.
#pragma once
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "pdyolo/data/augment.hpp"
#include "pdyolo/data/image_io.hpp"

namespace pdyolo::data {

struct LoaderOptions {
  int64_t img_size = 640;
  int64_t batch_size = 16;
  bool shuffle = true;
  bool augment = true;        // training augmentations (mosaic, perspective, HSV, flips, mixup)
  AugmentOptions aug;
  int workers = 2;            // threads assembling batches ahead; 0 = on the calling thread
  int64_t prefetch = 4;       // batches ready ahead at most
  bool cache_images = false;  // keep every resized image in memory (small datasets)
  uint64_t seed = 0;
};

struct Batch {
  Tensor images;                 // [B, 3, S, S], RGB in [0, 1]
  Tensor targets;                // [n, 6]: image index, class, cx, cy, w, h (normalised to S)
  std::vector<int64_t> indices;  // dataset index of each image
};

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, LoaderOptions options) : ds_(dataset), o_(std::move(options)) {
    PDYOLO_CHECK(!ds_.samples.empty(), "DataLoader: the dataset has no samples");
    PDYOLO_CHECK(o_.img_size > 0 && o_.img_size % 32 == 0, "DataLoader: img_size must be a positive multiple of 32, got ", o_.img_size);
    PDYOLO_CHECK(o_.batch_size > 0, "DataLoader: batch_size must be positive");
    if (o_.cache_images) {
      cache_.resize(ds_.samples.size());
      std::vector<std::string> errors(ds_.samples.size());
      parallel_tasks(static_cast<int64_t>(ds_.samples.size()), [&](int64_t i) {
        try {
          cache_[i] = resized(i);
        } catch (const Error& e) {
          errors[i] = e.what();
        }
      });
      for (size_t i = 0; i < errors.size(); ++i)
        if (!errors[i].empty()) note_unreadable(static_cast<int64_t>(i), errors[i]);
    }
  }
  ~DataLoader() { stop(); }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const { return (static_cast<int64_t>(ds_.samples.size()) + o_.batch_size - 1) / o_.batch_size; }
  const Dataset& dataset() const { return ds_; }

  // Orders the samples for `epoch` and starts the workers.
  void start_epoch(int64_t epoch) {
    stop();
    epoch_ = epoch;
    order_.resize(ds_.samples.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
    if (o_.shuffle) {
      Generator gen(mix(o_.seed, static_cast<uint64_t>(epoch), ~uint64_t{0}));
      for (size_t i = order_.size(); i-- > 1;) std::swap(order_[i], order_[gen.randint(i + 1)]);
    }
    produced_ = consumed_ = 0;
    ready_.clear();
    stopping_ = false;
    for (int w = 0; w < o_.workers; ++w) workers_.emplace_back([this] { work(); });
  }

  // The next batch of the epoch, in order; false when the epoch is over.
  bool next(Batch& out) {
    if (consumed_ >= size()) {
      stop();
      return false;
    }
    if (o_.workers == 0) {
      out = make_batch(consumed_++);
      return true;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return ready_.count(consumed_) > 0; });
    Slot slot = std::move(ready_[consumed_]);
    ready_.erase(consumed_++);
    cv_.notify_all();
    lock.unlock();
    if (slot.error) std::rethrow_exception(slot.error);
    out = std::move(slot.batch);
    return true;
  }

  // The unreadable images found since the last call, one line each naming the file.
  std::vector<std::string> take_problems() {
    std::lock_guard<std::mutex> lock(problems_mutex_);
    return std::exchange(problems_, {});
  }
  int64_t skipped_images() const {
    std::lock_guard<std::mutex> lock(problems_mutex_);
    return static_cast<int64_t>(unreadable_.size());
  }

  // One sample as training sees it: an S × S image and its boxes in pixels.
  std::pair<Image, Labels> sample(int64_t index, int64_t epoch) const {
    Generator gen(mix(o_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
    const int64_t s = o_.img_size;
    Image img;
    Labels labels;
    if (o_.augment && gen.uniform() < o_.aug.mosaic) {
      img = mosaic(index, labels, gen);
      if (gen.uniform() < o_.aug.mixup) {
        Labels other;
        const Image second = mosaic(static_cast<int64_t>(gen.randint(ds_.samples.size())), other, gen);
        data::mixup(img, labels, second, other, gen);
      }
    } else {
      Image base = load(index, labels);
      const Letterboxed lb = letterbox(base, s, s, false, o_.augment);
      for (Box& b : labels) {
        b.x1 = static_cast<float>(b.x1 * lb.info.gain_x + lb.info.pad_x), b.x2 = static_cast<float>(b.x2 * lb.info.gain_x + lb.info.pad_x);
        b.y1 = static_cast<float>(b.y1 * lb.info.gain_y + lb.info.pad_y), b.y2 = static_cast<float>(b.y2 * lb.info.gain_y + lb.info.pad_y);
      }
      img = lb.image;  // S × S: the two borders' rounding always adds up to the padding
      if (o_.augment) img = random_perspective(img, labels, o_.aug, gen);
    }
    if (o_.augment) {
      augment_hsv(img, o_.aug.hsv_h, o_.aug.hsv_s, o_.aug.hsv_v, gen);
      if (gen.uniform() < o_.aug.flipud) flip_vertical(img, labels);
      if (gen.uniform() < o_.aug.fliplr) flip_horizontal(img, labels);
    }
    return {std::move(img), std::move(labels)};
  }

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  static uint64_t mix(uint64_t seed, uint64_t epoch, uint64_t index) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull ^ (epoch + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull ^ index * 0x94d049bb133111ebull;
    z = (z ^ (z >> 31)) * 0xd6e8feb86659fd93ull;
    return z ^ (z >> 32);
  }

  // The image resized so its long side is img_size (the reference's load_image).
  Image resized(int64_t index) const { return resize_long_side(load_image(ds_.samples[index].image_path), o_.img_size, o_.augment); }

  bool is_unreadable(int64_t index) const {
    std::lock_guard<std::mutex> lock(problems_mutex_);
    return unreadable_.count(index) > 0;
  }
  void note_unreadable(int64_t index, const std::string& problem) const {
    std::lock_guard<std::mutex> lock(problems_mutex_);
    if (unreadable_.insert(index).second) problems_.push_back(problem);
    PDYOLO_CHECK(unreadable_.size() < ds_.samples.size(), "DataLoader: none of the ", ds_.samples.size(),
                 " images can be read (the last: ", problem, ")");
  }
  // The first readable sample from `index` on (wrapping around), decoded: its resized image.
  int64_t readable_from(int64_t index, Image& img) const {
    const int64_t n = static_cast<int64_t>(ds_.samples.size());
    for (int64_t i = index;; i = (i + 1) % n) {
      if (is_unreadable(i)) continue;
      if (o_.cache_images) {
        img = cache_[i];
        return i;
      }
      try {
        img = resized(i);
        return i;
      } catch (const Error& e) {
        note_unreadable(i, e.what());
      }
    }
  }

  // The resized image and its boxes scaled to it (another sample's when `index` cannot be read).
  Image load(int64_t index, Labels& labels) const {
    Image img;
    const Sample& s = ds_.samples[readable_from(index, img)];
    const float gx = static_cast<float>(img.width) / static_cast<float>(s.width);
    const float gy = static_cast<float>(img.height) / static_cast<float>(s.height);
    labels.clear();
    for (Box b : s.boxes) {
      b.x1 *= gx, b.x2 *= gx, b.y1 *= gy, b.y2 *= gy;
      labels.push_back(b);
    }
    return img;
  }

  Image mosaic(int64_t index, Labels& labels, Generator& gen) const {
    std::array<Image, 4> images;
    std::array<Labels, 4> parts;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = k == 0 ? index : static_cast<int64_t>(gen.randint(ds_.samples.size()));
      images[k] = load(i, parts[k]);
    }
    return mosaic4({&images[0], &images[1], &images[2], &images[3]}, parts, o_.img_size, labels, o_.aug, gen);
  }

  Batch make_batch(int64_t b) const {
    const int64_t start = b * o_.batch_size, count = std::min(o_.batch_size, static_cast<int64_t>(order_.size()) - start);
    const int64_t s = o_.img_size;
    Batch batch;
    batch.images = Tensor::empty({count, 3, s, s});
    std::vector<float> rows;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t index = order_[start + i];
      batch.indices.push_back(index);
      auto [img, labels] = sample(index, epoch_);
      image_to_chw(img, batch.images.data<float>() + i * 3 * s * s);
      for (const Box& l : labels) {
        const float w = (l.x2 - l.x1) / s, h = (l.y2 - l.y1) / s;
        rows.insert(rows.end(), {static_cast<float>(i), static_cast<float>(l.cls), (l.x1 + l.x2) / 2 / s, (l.y1 + l.y2) / 2 / s, w, h});
      }
    }
    batch.targets = Tensor::from_vector(rows, {static_cast<int64_t>(rows.size() / 6), 6});
    return batch;
  }

  void work() {
    SerialThreadScope serial;  // the workers already run side by side
    while (true) {
      int64_t b;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || produced_ >= size() || produced_ - consumed_ < o_.prefetch; });
        if (stopping_ || produced_ >= size()) return;
        b = produced_++;
      }
      Slot slot;
      try {
        slot.batch = make_batch(b);
      } catch (...) {
        slot.error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      ready_[b] = std::move(slot);
      cv_.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      cv_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  const Dataset& ds_;
  LoaderOptions o_;
  std::vector<Image> cache_;
  mutable std::mutex problems_mutex_;  // guards the two below, written by the workers
  mutable std::set<int64_t> unreadable_;
  mutable std::vector<std::string> problems_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<int64_t, Slot> ready_;
  int64_t produced_ = 0, consumed_ = 0;
  bool stopping_ = false;
};

}  // namespace pdyolo::data
