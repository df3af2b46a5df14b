// Losses: binary cross-entropy on logits, mean squared error, KL divergence on log-probabilities.
#pragma once
#include <algorithm>
#include <cmath>

#include "pdyolo/ops/reduce.hpp"

namespace pdyolo {

enum class Reduction { none, mean, sum, batchmean };  // batchmean: sum / size of axis 0 (kl_div)

namespace ops::detail {
inline Tensor reduce_loss(const Tensor& loss, Reduction r, const char* op) {
  switch (r) {
    case Reduction::none: return loss;
    case Reduction::mean: return mean(loss);
    case Reduction::sum: return sum(loss);
    case Reduction::batchmean:
      PDYOLO_CHECK(loss.dim() >= 1 && loss.shape()[0] > 0, op, ": batchmean needs a batch axis");
      return sum(loss) * (1.0f / static_cast<float>(loss.shape()[0]));
  }
  return loss;
}
inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  PDYOLO_CHECK(a.shape() == b.shape(), op, ": input ", shape_str(a.shape()), " and target ",
               shape_str(b.shape()), " must have the same shape");
}
}  // namespace ops::detail

struct BceParams {
  float pos_weight = 1.0f;  // weight of the positive term (YOLOv7's cls_pw / obj_pw)
  Reduction reduction = Reduction::mean;
};

// PyTorch's BCEWithLogitsLoss, in its stable form:
//   loss = (1 − t)·x + (1 + (pw − 1)·t) · softplus(−x)
inline Tensor bce_with_logits(const Tensor& logits, const Tensor& target, const BceParams& p = BceParams()) {
  ops::detail::check_same_shape(logits, target, "bce_with_logits");
  const kernels::MapParams params{p.pos_weight};
  Tensor loss = ops::detail::binary_map(logits, target, "bce_with_logits", kernels::BinaryMap::bce_with_logits, params);
  loss = autograd::record(loss, "bce_with_logits", {logits, target}, [xs = logits.detach(), ts = target.detach(), params](const Tensor& g) {
    return std::vector<Tensor>{ops::detail::ternary_map(xs, ts, g, "bce_with_logits", kernels::TernaryMap::bce_with_logits_dx, params),
                               ops::detail::ternary_map(xs, ts, g, "bce_with_logits", kernels::TernaryMap::bce_with_logits_dt, params)};
  });
  return ops::detail::reduce_loss(loss, p.reduction, "bce_with_logits");
}

// (a − b)²
inline Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction = Reduction::mean) {
  ops::detail::check_same_shape(a, b, "mse_loss");
  return ops::detail::reduce_loss(pow(a - b, 2.0f), reduction, "mse_loss");
}

// PyTorch's kl_div(input, target): input holds log-probabilities, target probabilities
// (or log-probabilities with log_target). Pointwise t·(log t − input), 0 where t = 0.
inline Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                     bool log_target = false) {
  ops::detail::check_same_shape(input, target, "kl_div");
  const kernels::MapParams params{log_target ? 1.0f : 0.0f};
  Tensor loss = ops::detail::binary_map(input, target, "kl_div", kernels::BinaryMap::kl_div, params);
  loss = autograd::record(loss, "kl_div", {input, target}, [xs = input.detach(), ts = target.detach(), params](const Tensor& g) {
    return std::vector<Tensor>{ops::detail::ternary_map(xs, ts, g, "kl_div", kernels::TernaryMap::kl_div_dx, params),
                               ops::detail::ternary_map(xs, ts, g, "kl_div", kernels::TernaryMap::kl_div_dt, params)};
  });
  return ops::detail::reduce_loss(loss, reduction, "kl_div");
}

}  // namespace pdyolo
