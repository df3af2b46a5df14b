// `pdyolo prune`: structured channel pruning of any model file (prune/prune.hpp).
#pragma once
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/prune/prune.hpp"

namespace pdyolo::cli {

inline const CommandSpec& prune_spec() {
  static const CommandSpec spec{
      "prune",
      "remove whole channels: every coupled tensor of a channel group is cut together",
      {weights_flag(), cfg_flag(), nc_flag(), {"--importance", "C", "l1", "channel importance: l1, l2, bn or random"},
       {"--ratio", "R", "0.3", "fraction of the prunable channels to remove"},
       {"--global", "", "", "rank channels across groups (scores normalised per group) instead of within each"},
       {"--max-layer-ratio", "R", "0.8", "no group loses more than this fraction"},
       {"--round-to", "K", "8", "groups keep a multiple of K channels"},
       {"--ignore", "NODES", "", "comma-separated node names whose groups stay whole"},
       {"--seed", "S", "0", "seed (random importance; random weights with --cfg)"},
       {"--mask-only", "", "", "keep the shapes and zero the chosen channels instead (the same outputs as the pruned model)"},
       {"--dry-run", "", "", "print what would be removed, write nothing"},
       {"--report", "FILE.json", "", "per group: the channels removed; totals before and after"},
       {"--out", "OUT.safetensors", "", "the pruned model"}}};
  return spec;
}

namespace detail {
struct ModelSize {
  int64_t params = 0;
  double gflops = 0;
};
inline ModelSize model_size(const graph::Graph& g) { return {g.parameter_count(), g.conv_flops(640) / 1e9}; }
}  // namespace detail

inline int run_prune(const Args& args) {
  prune::PruneOptions o;
  o.importance = prune::parse_importance(args.str("--importance"));
  o.ratio = args.real("--ratio");
  o.global = args.has("--global");
  o.max_layer_ratio = args.real("--max-layer-ratio");
  o.round_to = args.integer("--round-to");
  o.seed = static_cast<uint64_t>(args.integer("--seed"));
  std::istringstream ignore(args.str("--ignore"));
  for (std::string name; std::getline(ignore, name, ',');)
    if (!name.empty()) o.ignore.push_back(name);
  const bool dry_run = args.has("--dry-run");
  const std::string out = dry_run ? "" : args.required("--out");
  PDYOLO_CHECK(dry_run || models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  LoadedModel loaded = model_from_args(args, std::nullopt, o.seed);
  models::YoloModel& model = loaded.model;
  const detail::ModelSize before = detail::model_size(model.graph);
  const std::vector<prune::GroupCut> cuts = prune::plan_pruning(model.graph, o);
  if (args.has("--mask-only")) prune::apply_mask(model.graph, cuts);
  else prune::apply_pruning(model.graph, cuts);
  const detail::ModelSize after = detail::model_size(model.graph);
  for (const prune::GroupCut& c : cuts)
    std::printf("  %-28s %5lld -> %5lld channels\n", c.node.c_str(), static_cast<long long>(c.channels),
                static_cast<long long>(c.channels - static_cast<int64_t>(c.removed.size())));
  std::printf("%s: %zu groups cut (%s, ratio %g%s): %s -> %s parameters (%.1f%%), %.2f -> %.2f GFLOPs at 640 (%.1f%%)%s\n",
              loaded.source.c_str(), cuts.size(), args.str("--importance").c_str(), o.ratio, o.global ? ", global" : "",
              with_commas(before.params).c_str(), with_commas(after.params).c_str(), 100.0 * after.params / before.params, before.gflops,
              after.gflops, 100.0 * after.gflops / before.gflops, args.has("--mask-only") ? " (masked: shapes kept)" : "");
  if (dry_run) return 0;
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  if (!args.has("--mask-only")) model.config.reset();  // no config describes the pruned graph; its file does
  models::save_model(out, model);
  std::printf("wrote %s (%.1f MB)\n", out.c_str(), static_cast<double>(std::filesystem::file_size(out)) / 1e6);
  if (args.has("--report")) {
    std::ostringstream json;
    json << "{\"importance\":\"" << args.str("--importance") << "\",\"ratio\":" << o.ratio << ",\"global\":" << (o.global ? "true" : "false")
         << ",\"before\":{\"params\":" << before.params << ",\"gflops\":" << before.gflops << "},\"after\":{\"params\":" << after.params
         << ",\"gflops\":" << after.gflops << ",\"file_bytes\":" << std::filesystem::file_size(out) << "},\"groups\":[";
    for (size_t i = 0; i < cuts.size(); ++i) {
      json << (i ? "," : "") << "{\"node\":" << io::json_quote(cuts[i].node) << ",\"channels\":" << cuts[i].channels << ",\"removed\":[";
      for (size_t k = 0; k < cuts[i].removed.size(); ++k) json << (k ? "," : "") << cuts[i].removed[k];
      json << "]}";
    }
    json << "]}\n";
    io::write_file_atomic(args.str("--report"), [&](std::ostream& f) { f << json.str(); });
  }
  return 0;
}

}  // namespace pdyolo::cli
