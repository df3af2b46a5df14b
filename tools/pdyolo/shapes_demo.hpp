// The built-in synthetic task: classify 16×16 greyscale images by the stroke drawn on them
// (horizontal, vertical, diagonal, anti-diagonal), with noise and a random position. A small conv
// net learns it in seconds, which shows the whole stack working: ops, autograd, nn, SGD.
#pragma once
#include <cstdio>
#include <ostream>
#include <vector>

#include "pdyolo/pdyolo.hpp"

namespace pdyolo::examples {

constexpr int64_t kShapeClasses = 4;
constexpr int64_t kImageSize = 16;

// images [count, 1, 16, 16] and labels (one class index per image).
struct ShapesBatch {
  Tensor images;
  std::vector<int64_t> labels;
};

inline ShapesBatch make_shapes(int64_t count, Generator& gen) {
  ShapesBatch batch{Tensor::empty({count, 1, kImageSize, kImageSize}), {}};
  float* px = batch.images.data<float>();
  for (int64_t n = 0; n < count; ++n) {
    const int64_t label = static_cast<int64_t>(gen.randint(kShapeClasses));
    const int64_t r = 3 + static_cast<int64_t>(gen.randint(kImageSize - 6));
    const int64_t c = 3 + static_cast<int64_t>(gen.randint(kImageSize - 6));
    float* img = px + n * kImageSize * kImageSize;
    for (int64_t i = 0; i < kImageSize * kImageSize; ++i) img[i] = gen.normal(0.0f, 0.3f);
    for (int64_t t = -3; t <= 3; ++t) {
      const int64_t dy[] = {0, t, t, t}, dx[] = {t, 0, t, -t};
      img[(r + dy[label]) * kImageSize + (c + dx[label])] += 1.0f;
    }
    batch.labels.push_back(label);
  }
  return batch;
}

// conv-bn-silu → pool → conv-bn-silu → pool → 1×1 conv to class scores → global average
inline std::shared_ptr<nn::Sequential> make_shapes_net(Generator& gen) {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{1, 8, 3, 1, 1, 1, 1, false}, gen));
  net->push_back(std::make_shared<nn::BatchNorm2d>(8));
  net->push_back(nn::SiLU());
  net->push_back(nn::MaxPool2d(2));
  net->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{8, 16, 3, 1, 1, 1, 1, false}, gen));
  net->push_back(std::make_shared<nn::BatchNorm2d>(16));
  net->push_back(nn::SiLU());
  net->push_back(nn::MaxPool2d(2));
  net->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{16, kShapeClasses, 1}, gen));
  return net;
}

// Mean cross-entropy of logits [N, classes] against labels.
inline Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels) {
  const int64_t n = logits.shape()[0], classes = logits.shape()[1];
  Tensor one_hot = Tensor::zeros({n, classes});
  for (int64_t i = 0; i < n; ++i) one_hot.data<float>()[i * classes + labels[i]] = 1.0f;
  return -sum(log_softmax(logits, 1) * one_hot) * (1.0f / static_cast<float>(n));
}

struct ShapesDemoOptions {
  int64_t epochs = 6;
  int64_t train_size = 512;
  int64_t batch_size = 32;
  double lr = 0.05;
  uint64_t seed = 0;
};

struct EpochResult {
  double loss = 0.0;      // mean training loss over the epoch
  double accuracy = 0.0;  // on a held-out set, after the epoch
};

inline double shapes_accuracy(nn::Sequential& net, const ShapesBatch& data) {
  NoGradGuard no_grad;
  net.eval();
  const Tensor logits = mean(mean(net(data.images), 3), 2);  // [N, classes]
  net.train();
  int64_t correct = 0;
  for (size_t i = 0; i < data.labels.size(); ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < kShapeClasses; ++c)
      if (logits.at({static_cast<int64_t>(i), c}) > logits.at({static_cast<int64_t>(i), best})) best = c;
    correct += best == data.labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(data.labels.size());
}

inline std::vector<EpochResult> run_shapes_demo(const ShapesDemoOptions& o, std::ostream* log) {
  Generator gen(o.seed);
  auto net = make_shapes_net(gen);
  const ShapesBatch train = make_shapes(o.train_size, gen);
  const ShapesBatch test = make_shapes(256, gen);
  train::Optimizer sgd(net->parameters(), {o.lr, 0.9, 5e-4, true});
  if (log) *log << "shapes demo: " << net->parameter_count() << " parameters, " << o.train_size
                << " training images, accuracy before training " << shapes_accuracy(*net, test) << "\n";
  std::vector<EpochResult> history;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    double loss_sum = 0.0;
    int64_t batches = 0;
    for (int64_t start = 0; start + o.batch_size <= o.train_size; start += o.batch_size, ++batches) {
      const Tensor images = train.images.narrow(0, start, o.batch_size);
      const std::vector<int64_t> labels(train.labels.begin() + start, train.labels.begin() + start + o.batch_size);
      const Tensor logits = mean(mean((*net)(images), 3), 2);
      Tensor loss = cross_entropy(logits, labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      loss_sum += loss.item();
    }
    history.push_back({loss_sum / static_cast<double>(batches), shapes_accuracy(*net, test)});
    if (log) {
      char line[128];
      std::snprintf(line, sizeof line, "epoch %2lld/%lld  loss %.4f  test accuracy %5.1f%%\n",
                    static_cast<long long>(epoch + 1), static_cast<long long>(o.epochs), history.back().loss,
                    100.0 * history.back().accuracy);
      *log << line << std::flush;
    }
  }
  return history;
}

}  // namespace pdyolo::examples
