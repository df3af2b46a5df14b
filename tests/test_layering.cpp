// The library's layering, read from its includes: every folder of include/pdyolo has a place in
// kLayers, lowest first, and a header may include only its own folder or one below it. So no folder
// includes a folder above it and there is no cycle between folders; a new folder must be given its
// place here.
#include "test_main.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

// Lowest first. viz/ draws on data's images and above io/, so that io/ and data/ never include it.
const std::vector<std::string> kLayers = {"core", "kernels", "backend", "autograd", "ops", "nn", "io", "data", "viz",
                                          "graph", "models", "eval", "train", "distill", "prune", "quant", "pdyolo.hpp"};

int layer_of(const std::string& folder) {
  const auto it = std::find(kLayers.begin(), kLayers.end(), folder);
  return it == kLayers.end() ? -1 : static_cast<int>(it - kLayers.begin());
}

}  // namespace

TEST_CASE("no folder of include/pdyolo includes a folder above it (so none forms a cycle)") {
  const std::filesystem::path root = std::filesystem::path(PDYOLO_SOURCE_DIR) / "include" / "pdyolo";
  const std::regex include_line(R"re(^\s*#\s*include\s*"pdyolo/([A-Za-z0-9_.]+)(/|"))re");
  std::vector<std::string> violations;
  std::set<std::string> folders;
  int64_t includes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".hpp") continue;
    const std::string relative = std::filesystem::relative(entry.path(), root).generic_string();
    const std::string folder = relative.find('/') == std::string::npos ? relative : relative.substr(0, relative.find('/'));
    folders.insert(folder);
    CHECK_MESSAGE(layer_of(folder) >= 0, "include/pdyolo/" << folder << " has no place in kLayers (tests/test_layering.cpp)");
    std::ifstream in(entry.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::smatch m;
      if (!std::regex_search(line, m, include_line)) continue;
      ++includes;
      const std::string target = m[1];
      if (layer_of(target) > layer_of(folder))
        violations.push_back("include/pdyolo/" + relative + ":" + std::to_string(number) + ": " + folder + "/ includes " + target +
                             "/, which is above it");
    }
  }
  for (const std::string& v : violations) MESSAGE(v);
  CHECK(violations.empty());
  CHECK(folders.size() >= 15);  // the walk found the library
  CHECK(includes > 200);
}

TEST_CASE("the umbrella header pdyolo.hpp reaches every header of the library through its includes") {
  const std::filesystem::path root = std::filesystem::path(PDYOLO_SOURCE_DIR) / "include";
  const std::regex include_line(R"re(^\s*#\s*include\s*"(pdyolo/[A-Za-z0-9_./]+\.hpp)")re");
  std::set<std::string> reached, pending{"pdyolo/pdyolo.hpp"};
  while (!pending.empty()) {
    const std::string header = *pending.begin();
    pending.erase(pending.begin());
    if (!reached.insert(header).second) continue;
    std::ifstream in(root / header);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, include_line) && !reached.count(m[1])) pending.insert(m[1]);
    }
  }
  std::vector<std::string> unreached;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root / "pdyolo")) {
    if (!entry.is_regular_file() || entry.path().extension() != ".hpp") continue;
    const std::string header = std::filesystem::relative(entry.path(), root).generic_string();
    // The Eigen comparison kernels are an opt-in build (PDYOLO_EIGEN, tests and benchmarks), not part of the umbrella.
    if (header.rfind("pdyolo/kernels/eigen/", 0) == 0) continue;
    if (!reached.count(header)) unreached.push_back(header);
  }
  for (const std::string& h : unreached) MESSAGE(h << " is not reached from pdyolo/pdyolo.hpp");
  CHECK(unreached.empty());
  CHECK(reached.size() > 100);
}
