// Observers: watch a tensor's values over calibration batches and choose its activation (s, z).
//
//   minmax      the range of everything seen (PyTorch's MinMaxObserver);
//   ema         a moving average of each batch's min and max, constant 0.01 (MovingAverageMinMaxObserver);
//   percentile  the 0.01st and 99.99th percentiles of a histogram of everything seen;
//   kl          the upper clip whose 256-level quantization of the histogram loses the least
//               information, KL(P ‖ Q) — TensorRT's entropy calibration, one-sided because the
//               activations are nearly so;
//   mse         the range, shrunk by a common factor, with the least expected squared error over
//               the histogram.
//
// The histogram has 2048 bins spanning everything seen; a batch outside the span widens it, each old
// bin's count moving to the new bin that holds its centre.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/kernels/int8_scheme.hpp"

namespace pdyolo::quant {

enum class ObserverKind { minmax, ema, percentile, kl, mse };

inline ObserverKind parse_observer(const std::string& s) {
  if (s == "minmax") return ObserverKind::minmax;
  if (s == "ema") return ObserverKind::ema;
  if (s == "percentile") return ObserverKind::percentile;
  if (s == "kl") return ObserverKind::kl;
  if (s == "mse") return ObserverKind::mse;
  throw_error("--observer: unknown observer '", s, "' (minmax, ema, percentile, kl or mse)");
}

struct ObserverOptions {
  double ema_constant = 0.01;  // ema
  double percentile = 99.99;   // percentile: the upper one; the lower is 100 − this
  int bins = 2048;             // percentile, kl, mse
};

class Histogram {
 public:
  explicit Histogram(int bins) : counts_(static_cast<size_t>(bins), 0.0) {}

  void add(const float* x, int64_t n, float batch_min, float batch_max) {
    if (total_ == 0) lo_ = batch_min, hi_ = batch_max;
    else if (batch_min < lo_ || batch_max > hi_) widen(std::min(lo_, batch_min), std::max(hi_, batch_max));
    const double width = bin_width();
    const int last = bins() - 1;
    for (int64_t i = 0; i < n; ++i)
      counts_[static_cast<size_t>(width > 0 ? std::min(last, static_cast<int>((x[i] - lo_) / width)) : 0)] += 1.0;
    total_ += static_cast<double>(n);
  }

  int bins() const { return static_cast<int>(counts_.size()); }
  double count(int b) const { return counts_[static_cast<size_t>(b)]; }
  double total() const { return total_; }
  float lo() const { return lo_; }
  float hi() const { return hi_; }
  double bin_width() const { return (static_cast<double>(hi_) - lo_) / bins(); }
  double edge(int b) const { return lo_ + b * bin_width(); }  // lower edge of bin b; edge(bins()) = hi

 private:
  void widen(float lo, float hi) {
    std::vector<double> old(counts_.size(), 0.0);
    old.swap(counts_);
    const double old_lo = lo_, old_width = bin_width();
    lo_ = lo, hi_ = hi;
    const double width = bin_width();
    for (int b = 0; b < bins(); ++b) {
      if (old[static_cast<size_t>(b)] == 0) continue;
      const double centre = old_lo + (b + 0.5) * old_width;
      counts_[static_cast<size_t>(std::clamp(static_cast<int>((centre - lo_) / width), 0, bins() - 1))] += old[static_cast<size_t>(b)];
    }
  }

  std::vector<double> counts_;
  double total_ = 0;
  float lo_ = 0, hi_ = 0;
};

class Observer {
 public:
  explicit Observer(ObserverKind kind, ObserverOptions options = {}) : kind_(kind), o_(options), histogram_(options.bins) {}

  void observe(const Tensor& t) {
    const Tensor d = contiguous_copy(t.to(DType::f32));
    const float* x = d.data<float>();
    const int64_t n = d.numel();
    if (n == 0) return;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int64_t i = 0; i < n; ++i) {
      PDYOLO_CHECK(std::isfinite(x[i]), "quant: an observed tensor holds ", x[i]);
      lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    }
    if (batches_ == 0 || kind_ != ObserverKind::ema) {
      min_ = batches_ == 0 ? lo : std::min(min_, lo), max_ = batches_ == 0 ? hi : std::max(max_, hi);
    } else {
      min_ = static_cast<float>(min_ + o_.ema_constant * (lo - min_)), max_ = static_cast<float>(max_ + o_.ema_constant * (hi - max_));
    }
    if (uses_histogram()) histogram_.add(x, n, lo, hi);
    ++batches_;
  }

  int64_t batches() const { return batches_; }
  float min() const { return min_; }
  float max() const { return max_; }
  const Histogram& histogram() const { return histogram_; }

  // The chosen range [lo, hi] (before widening to hold 0) and its (s, z).
  std::pair<float, float> range() const {
    PDYOLO_CHECK(batches_ > 0, "quant: an observer that has seen nothing has no range");
    switch (kind_) {
      case ObserverKind::minmax:
      case ObserverKind::ema: return {min_, max_};
      case ObserverKind::percentile: return percentile_range();
      case ObserverKind::kl: return {histogram_.lo(), kl_upper()};
      case ObserverKind::mse: return mse_range();
    }
    return {min_, max_};
  }
  QParams params() const {
    const auto [lo, hi] = range();
    return choose_activation_params(lo, hi);
  }

 private:
  bool uses_histogram() const { return kind_ == ObserverKind::percentile || kind_ == ObserverKind::kl || kind_ == ObserverKind::mse; }

  // The value below which a fraction p of the histogram's mass lies (linear within its bin).
  float quantile(double p) const {
    const Histogram& h = histogram_;
    const double target = p * h.total();
    double below = 0;
    for (int b = 0; b < h.bins(); ++b) {
      if (below + h.count(b) >= target && h.count(b) > 0)
        return static_cast<float>(h.edge(b) + h.bin_width() * std::clamp((target - below) / h.count(b), 0.0, 1.0));
      below += h.count(b);
    }
    return h.hi();
  }
  std::pair<float, float> percentile_range() const {
    return {quantile(1.0 - o_.percentile / 100.0), quantile(o_.percentile / 100.0)};
  }

  // TensorRT's search, clipping the top: for each i ≥ 256 whose edge lies above 0, P = the first i
  // bins with the mass above folded into bin i − 1; Q = those i bins as they were, merged into 256
  // levels and spread back over P's non-empty bins; the i with the least KL(P ‖ Q) (smoothed as MXNet
  // smooths it) gives the upper edge.
  float kl_upper() const {
    const Histogram& h = histogram_;
    const int levels = kActivationMax - kActivationMin + 1;
    if (h.bins() <= levels || h.bin_width() <= 0) return h.hi();
    double best = std::numeric_limits<double>::infinity();
    int best_i = h.bins();
    std::vector<double> p, q;
    // The clip must stay above 0 (a two-sided tensor's histogram starts below it): from the first
    // edge past 0, and at least 256 bins.
    const int first = std::max(levels, static_cast<int>(std::floor(-h.lo() / h.bin_width())) + 1);
    for (int i = first; i <= h.bins(); ++i) {
      p.assign(static_cast<size_t>(i), 0.0);
      for (int b = 0; b < i; ++b) p[static_cast<size_t>(b)] = h.count(b);
      for (int b = i; b < h.bins(); ++b) p[static_cast<size_t>(i - 1)] += h.count(b);
      q.assign(static_cast<size_t>(i), 0.0);
      for (int l = 0; l < levels; ++l) {
        const int start = l * i / levels, stop = (l + 1) * i / levels;
        double mass = 0;
        int nonzero = 0;
        // Q's mass comes from the unclipped bins, without the folded outliers: otherwise Q equals P
        // whenever a level spans one bin, and the narrowest clip always wins with KL = 0.
        for (int b = start; b < stop; ++b) mass += h.count(b), nonzero += p[static_cast<size_t>(b)] > 0;
        for (int b = start; b < stop; ++b)
          if (p[static_cast<size_t>(b)] > 0) q[static_cast<size_t>(b)] = mass / nonzero;
      }
      const double kl = smoothed_kl(p, q);
      if (kl < best) best = kl, best_i = i;
    }
    return static_cast<float>(h.edge(best_i));
  }

  // KL(P ‖ Q) of two histograms of counts, smoothed as MXNet's calibration smooths them — empty bins
  // get ε = 1e-4 counts, which the other bins give up evenly, so no term is infinite — then
  // normalised.
  static double smoothed_kl(std::vector<double> p, std::vector<double> q) {
    const auto smooth = [](std::vector<double>& d) {
      size_t zeros = 0;
      for (double v : d) zeros += v == 0;
      if (zeros == d.size()) return false;
      const double eps = 1e-4, taken = eps * static_cast<double>(zeros) / static_cast<double>(d.size() - zeros);
      double total = 0;
      for (double& v : d) v = v == 0 ? eps : v - taken, total += v;
      for (double& v : d) v /= total;
      return std::all_of(d.begin(), d.end(), [](double v) { return v > 0; });
    };
    if (!smooth(p) || !smooth(q)) return std::numeric_limits<double>::infinity();
    double kl = 0;
    for (size_t b = 0; b < p.size(); ++b) kl += p[b] * std::log(p[b] / q[b]);
    return kl;
  }

  // The factor α ∈ {1, 0.99, …, 0.30} of [min, max] whose quantization of the histogram's bin
  // centres has the least total squared error (clipped values included).
  std::pair<float, float> mse_range() const {
    const Histogram& h = histogram_;
    double best = std::numeric_limits<double>::infinity();
    std::pair<float, float> best_range{h.lo(), h.hi()};
    for (int k = 100; k >= 30; --k) {
      const float lo = h.lo() * k / 100.0f, hi = h.hi() * k / 100.0f;
      if (hi < lo) continue;
      const QParams p = choose_activation_params(lo, hi);
      double error = 0;
      for (int b = 0; b < h.bins(); ++b) {
        if (h.count(b) == 0) continue;
        const float centre = static_cast<float>(h.edge(b) + 0.5 * h.bin_width());
        const double e = dequantize_activation(quantize_activation(centre, p), p) - centre;
        error += h.count(b) * e * e;
      }
      if (error < best) best = error, best_range = {lo, hi};
    }
    return best_range;
  }

  ObserverKind kind_;
  ObserverOptions o_;
  Histogram histogram_;
  int64_t batches_ = 0;
  float min_ = 0, max_ = 0;
};

}  // namespace pdyolo::quant
