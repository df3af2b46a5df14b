// The YOLOv7 training losses, as the reference defines them (utils/loss.py):
//   ComputeLoss     targets matched to anchors by width/height ratio (< anchor_t) in their own cell
//                   and the two nearest neighbouring cells; CIoU box loss, BCE objectness towards
//                   the IoU with per-level balance, BCE classification with label smoothing.
//   ComputeLossOTA  the same candidates, then SimOTA: per ground truth a dynamic number of the
//                   cheapest candidates (cost = class BCE + 3 · −log IoU), conflicts resolved by cost.
// Both return (lbox + lobj + lcls) · batch size as a differentiable scalar, and the detached items.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>

#include "pdyolo/graph/graph.hpp"
#include "pdyolo/io/value.hpp"

namespace pdyolo::train {

struct LossHyp {
  float box = 0.05f, obj = 1.0f, cls = 0.5f;  // gains (after the reference's train.py scaling)
  float cls_pw = 1.0f, obj_pw = 1.0f;          // BCE positive weights
  float anchor_t = 4.0f;                       // anchor ratio threshold
  float label_smoothing = 0.0f;
  float gr = 1.0f;                             // objectness target = (1 − gr) + gr · IoU

  // From a hyp YAML, scaled as the reference's train.py scales it for nl levels, nc classes, img_size.
  static LossHyp from_hyp(const io::Value& hyp, int64_t nl, int64_t nc, int64_t img_size) {
    LossHyp h;
    auto read = [&](const char* key, float& field) {
      if (const io::Value* v = hyp.find(key); v && v->is_number()) field = static_cast<float>(v->as_double());
    };
    read("box", h.box), read("obj", h.obj), read("cls", h.cls), read("cls_pw", h.cls_pw), read("obj_pw", h.obj_pw);
    read("anchor_t", h.anchor_t), read("label_smoothing", h.label_smoothing);
    float fl_gamma = 0.0f;
    read("fl_gamma", fl_gamma);
    PDYOLO_CHECK(fl_gamma == 0.0f, "loss: fl_gamma ", fl_gamma, " (focal loss) is not supported; use 0");
    h.box *= 3.0f / static_cast<float>(nl);
    h.cls *= static_cast<float>(nc) / 80.0f * 3.0f / static_cast<float>(nl);
    h.obj *= static_cast<float>(img_size * img_size) / (640.0f * 640.0f) * 3.0f / static_cast<float>(nl);
    return h;
  }
};

struct LossItems {
  float box = 0, obj = 0, cls = 0, total = 0;  // total = box + obj + cls (per image, as the reference logs)
};

struct LossResult {
  Tensor loss;  // (box + obj + cls) · batch size, differentiable
  LossItems items;
};

// What the losses need from the detection head.
struct DetectHead {
  int64_t nc = 0, na = 0;
  std::vector<float> strides;
  std::vector<std::vector<float>> anchors;  // per level, w0 h0 w1 h1 … in grid units
};

inline DetectHead detect_head(const graph::Graph& g) {
  const int d = g.detect_node();
  PDYOLO_CHECK(d >= 0, "loss: the model has no detect node");
  const graph::Node& node = g.nodes[d];
  const auto& attrs = node.get<graph::DetectAttrs>();
  DetectHead h{attrs.nc, attrs.na, attrs.strides, {}};
  const std::vector<float> a = node.tensor("anchors").to_vector();  // [nl, na, 2]
  for (size_t l = 0; l < attrs.strides.size(); ++l)
    h.anchors.emplace_back(a.begin() + static_cast<int64_t>(l) * attrs.na * 2, a.begin() + static_cast<int64_t>(l + 1) * attrs.na * 2);
  return h;
}

// Positive samples of one level: image, anchor, cell, the target row they come from, and the
// target box relative to the cell (x, y offsets and w, h, in grid units).
struct LevelMatches {
  std::vector<int64_t> b, a, gj, gi, target;
  std::vector<float> tbox;  // 4 per match
  size_t size() const { return b.size(); }
};

namespace detail {

// The reference's build_targets / find_3_positive, in its order: per level, offsets
// (centre, left, up, right, down), then anchors, then targets.
inline std::vector<LevelMatches> find_3_positive(const std::vector<Shape>& shapes, const std::vector<float>& targets,
                                                 const DetectHead& head, float anchor_t) {
  const int64_t nt = static_cast<int64_t>(targets.size() / 6);
  const float g = 0.5f;
  const float off[5][2] = {{0, 0}, {g, 0}, {0, g}, {-g, 0}, {0, -g}};
  std::vector<LevelMatches> out(shapes.size());
  for (size_t l = 0; l < shapes.size(); ++l) {
    const float W = static_cast<float>(shapes[l][3]), H = static_cast<float>(shapes[l][2]);
    struct Kept {
      int64_t a, t;
      float gx, gy, gw, gh;
    };
    std::vector<Kept> kept;
    for (int64_t a = 0; a < head.na; ++a)
      for (int64_t t = 0; t < nt; ++t) {
        const float* r = &targets[t * 6];
        const float gw = r[4] * W, gh = r[5] * H;
        const float rw = gw / head.anchors[l][a * 2], rh = gh / head.anchors[l][a * 2 + 1];
        if (std::max(std::max(rw, 1.0f / rw), std::max(rh, 1.0f / rh)) < anchor_t) kept.push_back({a, t, r[2] * W, r[3] * H, gw, gh});
      }
    LevelMatches& m = out[l];
    for (int o = 0; o < 5; ++o)
      for (const Kept& k : kept) {
        const float gxi = W - k.gx, gyi = H - k.gy;
        const bool use[5] = {true, std::fmod(k.gx, 1.0f) < g && k.gx > 1.0f, std::fmod(k.gy, 1.0f) < g && k.gy > 1.0f,
                             std::fmod(gxi, 1.0f) < g && gxi > 1.0f, std::fmod(gyi, 1.0f) < g && gyi > 1.0f};
        if (!use[o]) continue;
        const int64_t gi = std::clamp<int64_t>(static_cast<int64_t>(k.gx - off[o][0]), 0, static_cast<int64_t>(W) - 1);
        const int64_t gj = std::clamp<int64_t>(static_cast<int64_t>(k.gy - off[o][1]), 0, static_cast<int64_t>(H) - 1);
        m.b.push_back(static_cast<int64_t>(targets[k.t * 6]));
        m.a.push_back(k.a);
        m.gj.push_back(gj);
        m.gi.push_back(gi);
        m.target.push_back(k.t);
        m.tbox.insert(m.tbox.end(), {k.gx - static_cast<float>(gi), k.gy - static_cast<float>(gj), k.gw, k.gh});
      }
  }
  return out;
}

// The reference's bbox_iou(..., x1y1x2y2=False, CIoU=True) of predicted boxes [n, 4] (x, y, w, h;
// differentiable) against constant target boxes [n, 4]; returns [n].
inline Tensor ciou(const Tensor& pbox, const Tensor& tbox) {
  const float eps = 1e-7f;
  auto col = [](const Tensor& t, int64_t k) { return t.narrow(1, k, 1).reshape({-1}); };
  const Tensor px = col(pbox, 0), py = col(pbox, 1), pw = col(pbox, 2), ph = col(pbox, 3);
  const Tensor tx = col(tbox, 0), ty = col(tbox, 1), tw = col(tbox, 2), th = col(tbox, 3);
  const Tensor b1_x1 = px - pw / 2.0f, b1_x2 = px + pw / 2.0f, b1_y1 = py - ph / 2.0f, b1_y2 = py + ph / 2.0f;
  const Tensor b2_x1 = tx - tw / 2.0f, b2_x2 = tx + tw / 2.0f, b2_y1 = ty - th / 2.0f, b2_y2 = ty + th / 2.0f;
  const float big = std::numeric_limits<float>::max();
  const Tensor inter = clamp(minimum(b1_x2, b2_x2) - maximum(b1_x1, b2_x1), 0.0f, big) *
                       clamp(minimum(b1_y2, b2_y2) - maximum(b1_y1, b2_y1), 0.0f, big);
  const Tensor w1 = b1_x2 - b1_x1, h1 = b1_y2 - b1_y1 + eps, w2 = b2_x2 - b2_x1, h2 = b2_y2 - b2_y1 + eps;
  const Tensor iou = inter / (w1 * h1 + w2 * h2 - inter + eps);
  const Tensor cw = maximum(b1_x2, b2_x2) - minimum(b1_x1, b2_x1), ch = maximum(b1_y2, b2_y2) - minimum(b1_y1, b2_y1);
  const Tensor c2 = pow(cw, 2.0f) + pow(ch, 2.0f) + eps;
  const Tensor rho2 = (pow(b2_x1 + b2_x2 - b1_x1 - b1_x2, 2.0f) + pow(b2_y1 + b2_y2 - b1_y1 - b1_y2, 2.0f)) / 4.0f;
  const Tensor v = pow(atan(w2 / h2) - atan(w1 / h1), 2.0f) * static_cast<float>(4.0 / (M_PI * M_PI));
  Tensor alpha;
  {
    NoGradGuard no_grad;
    alpha = (v / (v - iou + (1.0f + eps))).detach();
  }
  return iou - (rho2 / c2 + v * alpha);
}

// The loss terms for given positives (shared by both assignments).
inline LossResult loss_from_matches(const std::vector<Tensor>& p, const std::vector<LevelMatches>& matches,
                                    const std::vector<float>& targets, const DetectHead& head, const LossHyp& hyp) {
  static const float balance3[3] = {4.0f, 1.0f, 0.4f};
  static const float balance5[5] = {4.0f, 1.0f, 0.25f, 0.06f, 0.02f};
  const float* balance = p.size() == 3 ? balance3 : balance5;
  PDYOLO_CHECK(p.size() == 3 || p.size() <= 5, "loss: ", p.size(), " detection levels are not supported");
  const float cp = 1.0f - 0.5f * hyp.label_smoothing, cn = 0.5f * hyp.label_smoothing;
  Tensor lbox = Tensor::scalar(0.0f), lobj = Tensor::scalar(0.0f), lcls = Tensor::scalar(0.0f);
  const int64_t no = head.nc + 5;
  for (size_t l = 0; l < p.size(); ++l) {
    const Shape& s = p[l].shape();  // [B, na, H, W, no]
    const int64_t B = s[0], H = s[2], W = s[3];
    Tensor tobj = Tensor::zeros({B, head.na, H, W, 1});
    const LevelMatches& m = matches[l];
    const int64_t n = static_cast<int64_t>(m.size());
    if (n) {
      std::vector<int64_t> rows(static_cast<size_t>(n));
      std::vector<float> anchor_wh(static_cast<size_t>(n * 2));
      for (int64_t k = 0; k < n; ++k) {
        rows[k] = ((m.b[k] * head.na + m.a[k]) * H + m.gj[k]) * W + m.gi[k];
        anchor_wh[k * 2] = head.anchors[l][m.a[k] * 2];
        anchor_wh[k * 2 + 1] = head.anchors[l][m.a[k] * 2 + 1];
      }
      const Tensor ps = gather_rows(p[l].reshape({-1, no}), rows);  // [n, no]
      const Tensor pxy = sigmoid(ps.narrow(1, 0, 2)) * 2.0f - 0.5f;
      const Tensor pwh = pow(sigmoid(ps.narrow(1, 2, 2)) * 2.0f, 2.0f) * Tensor::from_vector(anchor_wh, {n, 2});
      const Tensor iou = ciou(concat({pxy, pwh}, 1), Tensor::from_vector(m.tbox, {n, 4}));
      lbox = lbox + mean(1.0f - iou);
      const std::vector<float> iou_values = iou.to_vector();
      float* to = tobj.data<float>();
      for (int64_t k = 0; k < n; ++k)  // later positives overwrite earlier ones in the same cell, as index_put does
        to[rows[k]] = (1.0f - hyp.gr) + hyp.gr * std::max(iou_values[k], 0.0f);
      if (head.nc > 1) {
        std::vector<float> t(static_cast<size_t>(n * head.nc), cn);
        for (int64_t k = 0; k < n; ++k) t[k * head.nc + static_cast<int64_t>(targets[m.target[k] * 6 + 1])] = cp;
        lcls = lcls + bce_with_logits(ps.narrow(1, 5, head.nc), Tensor::from_vector(t, {n, head.nc}), {hyp.cls_pw, Reduction::mean});
      }
    }
    const Tensor obji = bce_with_logits(p[l].narrow(4, 4, 1), tobj, {hyp.obj_pw, Reduction::mean});
    lobj = lobj + obji * balance[l];
  }
  const Tensor box = lbox * hyp.box, obj = lobj * hyp.obj, cls = lcls * hyp.cls;
  const Tensor total = box + obj + cls;
  const float bs = static_cast<float>(p[0].shape()[0]);
  return {total * bs, {box.item(), obj.item(), cls.item(), total.item()}};
}

inline std::vector<float> target_rows(const Tensor& targets) {
  PDYOLO_CHECK(targets.dim() == 2 && (targets.shape()[1] == 6 || targets.numel() == 0), "loss: targets must be [n, 6] rows of ",
               "(image, class, cx, cy, w, h), got ", shape_str(targets.shape()));
  return targets.to_vector();
}

inline std::vector<Shape> level_shapes(const std::vector<Tensor>& p, const DetectHead& head) {
  PDYOLO_CHECK(p.size() == head.strides.size(), "loss: ", p.size(), " prediction levels for a head with ", head.strides.size());
  std::vector<Shape> shapes;
  for (const Tensor& t : p) {
    PDYOLO_CHECK(t.dim() == 5 && t.shape()[1] == head.na && t.shape()[4] == head.nc + 5, "loss: prediction ", shape_str(t.shape()),
                 " is not [B, ", head.na, ", H, W, ", head.nc + 5, "]");
    shapes.push_back(t.shape());
  }
  return shapes;
}

}  // namespace detail

// ComputeLoss: p = the model's raw maps in training mode, targets [n, 6].
inline LossResult compute_loss(const std::vector<Tensor>& p, const Tensor& targets, const DetectHead& head, const LossHyp& hyp) {
  const std::vector<float> t = detail::target_rows(targets);
  const std::vector<LevelMatches> matches = detail::find_3_positive(detail::level_shapes(p, head), t, head, hyp.anchor_t);
  return detail::loss_from_matches(p, matches, t, head, hyp);
}

namespace detail {

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// SimOTA over the find_3_positive candidates of each image.
inline std::vector<LevelMatches> ota_assign(const std::vector<Tensor>& p, const std::vector<float>& targets, const DetectHead& head,
                                            float anchor_t, int64_t image_size) {
  const std::vector<Shape> shapes = level_shapes(p, head);
  const std::vector<LevelMatches> candidates = find_3_positive(shapes, targets, head, anchor_t);
  const int64_t nl = static_cast<int64_t>(p.size()), batch = shapes[0][0], no = head.nc + 5;
  const int64_t nt = static_cast<int64_t>(targets.size() / 6);
  std::vector<LevelMatches> out(static_cast<size_t>(nl));
  std::vector<const float*> data;
  for (const Tensor& t : p) data.push_back(t.is_contiguous() ? t.data<float>() : nullptr);
  std::vector<Tensor> dense_copies;
  for (int64_t l = 0; l < nl; ++l)
    if (!data[l]) {
      dense_copies.push_back(contiguous_copy(p[l]));
      data[l] = dense_copies.back().data<float>();
    }
  for (int64_t img = 0; img < batch; ++img) {
    std::vector<int64_t> gts;
    for (int64_t t = 0; t < nt; ++t)
      if (static_cast<int64_t>(targets[t * 6]) == img) gts.push_back(t);
    if (gts.empty()) continue;
    // Candidates of this image across levels, in level order.
    struct Candidate {
      int64_t level, k;
      float x1, y1, x2, y2;
      const float* pred;
    };
    std::vector<Candidate> cands;
    for (int64_t l = 0; l < nl; ++l) {
      const LevelMatches& m = candidates[l];
      const int64_t H = shapes[l][2], W = shapes[l][3];
      for (size_t k = 0; k < m.size(); ++k) {
        if (m.b[k] != img) continue;
        const float* pr = data[l] + (((m.b[k] * head.na + m.a[k]) * H + m.gj[k]) * W + m.gi[k]) * no;
        const float s = head.strides[l];
        const float x = (sigmoidf(pr[0]) * 2.0f - 0.5f + static_cast<float>(m.gi[k])) * s;
        const float y = (sigmoidf(pr[1]) * 2.0f - 0.5f + static_cast<float>(m.gj[k])) * s;
        const float w = std::pow(sigmoidf(pr[2]) * 2.0f, 2.0f) * head.anchors[l][m.a[k] * 2] * s;
        const float h = std::pow(sigmoidf(pr[3]) * 2.0f, 2.0f) * head.anchors[l][m.a[k] * 2 + 1] * s;
        cands.push_back({l, static_cast<int64_t>(k), x - w / 2, y - h / 2, x + w / 2, y + h / 2, pr});
      }
    }
    if (cands.empty()) continue;
    const int64_t ng = static_cast<int64_t>(gts.size()), nc_ = static_cast<int64_t>(cands.size());
    std::vector<float> iou(static_cast<size_t>(ng * nc_)), cost(static_cast<size_t>(ng * nc_));
    std::vector<int64_t> dynamic_k(static_cast<size_t>(ng));
    for (int64_t g = 0; g < ng; ++g) {
      const float* r = &targets[gts[g] * 6];
      const float cx = r[2] * image_size, cy = r[3] * image_size, w = r[4] * image_size, h = r[5] * image_size;
      const float gx1 = cx - w / 2, gy1 = cy - h / 2, gx2 = cx + w / 2, gy2 = cy + h / 2;
      const int64_t cls = static_cast<int64_t>(r[1]);
      for (int64_t j = 0; j < nc_; ++j) {
        const Candidate& c = cands[j];
        const float inter = std::max(0.0f, std::min(gx2, c.x2) - std::max(gx1, c.x1)) * std::max(0.0f, std::min(gy2, c.y2) - std::max(gy1, c.y1));
        const float v = inter / ((gx2 - gx1) * (gy2 - gy1) + (c.x2 - c.x1) * (c.y2 - c.y1) - inter);
        iou[g * nc_ + j] = v;
        // class cost: Σ_c BCE(logit(√(σ(cls_c)·σ(obj))), one-hot)
        float cls_cost = 0.0f;
        const float obj = sigmoidf(c.pred[4]);
        for (int64_t k = 0; k < head.nc; ++k) {
          const float y = std::sqrt(sigmoidf(c.pred[5 + k]) * obj);
          const float x = std::log(y / (1.0f - y));
          const float t = k == cls ? 1.0f : 0.0f;
          cls_cost += std::max(x, 0.0f) - x * t + std::log1p(std::exp(-std::fabs(x)));
        }
        cost[g * nc_ + j] = cls_cost + 3.0f * -std::log(v + 1e-8f);
      }
      std::vector<float> row(iou.begin() + g * nc_, iou.begin() + (g + 1) * nc_);
      const int64_t top = std::min<int64_t>(10, nc_);
      std::partial_sort(row.begin(), row.begin() + top, row.end(), std::greater<float>());
      float sum = 0.0f;
      for (int64_t i = 0; i < top; ++i) sum += row[i];
      // Non-finite predictions (a diverged run, caught by the trainer right after) make sum NaN:
      // converting that to an integer would be undefined behaviour.
      dynamic_k[g] = std::isfinite(sum) ? std::max<int64_t>(1, static_cast<int64_t>(sum)) : 1;
    }
    // Each ground truth takes its dynamic_k cheapest candidates; a candidate taken twice goes to the cheaper.
    std::vector<int8_t> matching(static_cast<size_t>(ng * nc_), 0);
    for (int64_t g = 0; g < ng; ++g) {
      std::vector<int64_t> order(static_cast<size_t>(nc_));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return cost[g * nc_ + x] < cost[g * nc_ + y]; });
      for (int64_t i = 0; i < std::min(dynamic_k[g], nc_); ++i) matching[g * nc_ + order[i]] = 1;
    }
    for (int64_t j = 0; j < nc_; ++j) {
      int64_t count = 0;
      for (int64_t g = 0; g < ng; ++g) count += matching[g * nc_ + j];
      if (count <= 1) continue;
      int64_t best = 0;
      for (int64_t g = 1; g < ng; ++g)
        if (cost[g * nc_ + j] < cost[best * nc_ + j]) best = g;
      for (int64_t g = 0; g < ng; ++g) matching[g * nc_ + j] = g == best;
    }
    for (int64_t j = 0; j < nc_; ++j) {
      int64_t matched = -1;
      for (int64_t g = 0; g < ng; ++g)
        if (matching[g * nc_ + j]) {
          matched = g;
          break;
        }
      if (matched < 0) continue;
      const Candidate& c = cands[j];
      const LevelMatches& src = candidates[c.level];
      LevelMatches& dst = out[c.level];
      const float* r = &targets[gts[matched] * 6];
      const float W = static_cast<float>(shapes[c.level][3]), H = static_cast<float>(shapes[c.level][2]);
      dst.b.push_back(src.b[c.k]);
      dst.a.push_back(src.a[c.k]);
      dst.gj.push_back(src.gj[c.k]);
      dst.gi.push_back(src.gi[c.k]);
      dst.target.push_back(gts[matched]);
      dst.tbox.insert(dst.tbox.end(), {r[2] * W - static_cast<float>(src.gi[c.k]), r[3] * H - static_cast<float>(src.gj[c.k]), r[4] * W, r[5] * H});
    }
  }
  return out;
}

}  // namespace detail

// ComputeLossOTA: as compute_loss, with SimOTA assignment; image_size is the (square) input size.
inline LossResult compute_loss_ota(const std::vector<Tensor>& p, const Tensor& targets, const DetectHead& head, const LossHyp& hyp,
                                   int64_t image_size) {
  const std::vector<float> t = detail::target_rows(targets);
  const std::vector<LevelMatches> matches = detail::ota_assign(p, t, head, hyp.anchor_t, image_size);
  return detail::loss_from_matches(p, matches, t, head, hyp);
}

}  // namespace pdyolo::train
