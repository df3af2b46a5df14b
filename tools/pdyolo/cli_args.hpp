// The command line of the pdyolo subcommands. Each command declares its flags once, in a
// CommandSpec — name, value placeholder, default, help — and both the parser (Args) and the usage
// text (`pdyolo help`, `pdyolo CMD --help`) read that declaration, so they cannot disagree.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "pdyolo/core/error.hpp"
#include "pdyolo/core/parallel.hpp"

namespace pdyolo::cli {

struct Flag {
  std::string name;      // "--img-size"
  std::string value;     // placeholder of its value ("S"); empty for a switch
  std::string fallback;  // the value when the flag is not given ("" when none)
  std::string help;
  bool optional_value = false;  // the value may be left out (`--resume` alone)
  bool is_switch() const { return value.empty(); }
};

struct CommandSpec {
  std::string name, summary;
  std::vector<Flag> flags;

  const Flag* find(const std::string& flag) const {
    for (const Flag& f : flags)
      if (f.name == flag) return &f;
    return nullptr;
  }
  // "  info     summary\n             --flag VALUE   help (default)\n…"
  std::string usage() const {
    std::string text = "  " + name + std::string(name.size() < 9 ? 9 - name.size() : 1, ' ') + summary + "\n";
    for (const Flag& f : flags) {
      std::string left = f.name + (f.is_switch() ? "" : f.optional_value ? " [" + f.value + "]" : " " + f.value);
      left += std::string(left.size() < 24 ? 24 - left.size() : 1, ' ');
      text += "           " + left + f.help + (f.fallback.empty() ? "" : " (" + f.fallback + ")") + "\n";
    }
    return text;
  }
};

// Flags several commands share, declared once here with one default each. (--batch-size, --split
// and --out stay per command: their meaning and default differ — images per timed run or per step,
// the split to evaluate or to train on, a file or a folder.)
inline Flag threads_flag() { return {"--threads", "T", "", "threads (all cores)"}; }
inline Flag workers_flag() { return {"--workers", "K", "2", "data-loading threads"}; }
inline Flag no_progress_flag() { return {"--no-progress", "", "", "no progress bars"}; }
inline Flag cache_flag() { return {"--cache", "", "", "keep the resized images in memory"}; }

class Args {
 public:
  // argv[first..] holds the options of the command `spec` declares.
  Args(const CommandSpec& spec, int argc, char** argv, int first = 2) : spec_(spec) {
    for (int i = first; i < argc; ++i) {
      const std::string name = argv[i];
      const Flag* flag = spec.find(name);
      if (!flag) throw_error(spec.name, ": unknown option '", name, "' (pdyolo ", spec.name, " --help lists the options)");
      if (flag->is_switch()) {
        values_[name] = "1";
      } else if (flag->optional_value) {
        const bool next_is_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
        values_[name] = next_is_value ? argv[++i] : "";
      } else {
        PDYOLO_CHECK(i + 1 < argc, spec.name, ": option ", name, " needs a value (", flag->value, ")");
        values_[name] = argv[++i];
      }
    }
  }

  bool declares(const std::string& flag) const { return spec_.find(flag) != nullptr; }
  // Whether the flag was given.
  bool has(const std::string& flag) const {
    declared(flag);
    return values_.count(flag) > 0;
  }
  // Its value, or its declared default.
  std::string str(const std::string& flag) const {
    const Flag& f = declared(flag);
    auto it = values_.find(flag);
    return it == values_.end() ? f.fallback : it->second;
  }
  std::string required(const std::string& flag) const {
    PDYOLO_CHECK(has(flag), spec_.name, ": option ", flag, " is required");
    return str(flag);
  }
  long long integer(const std::string& flag) const {
    const std::string v = str(flag);
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    PDYOLO_CHECK(!v.empty() && *end == '\0', "option ", flag, ": '", v, "' is not an integer");
    return n;
  }
  // A comma-separated value ("a,b,c") as its non-empty items.
  std::vector<std::string> list(const std::string& flag) const {
    std::vector<std::string> items;
    const std::string v = str(flag);
    for (size_t start = 0; start <= v.size();) {
      const size_t comma = std::min(v.find(',', start), v.size());
      if (comma > start) items.push_back(v.substr(start, comma - start));
      start = comma + 1;
    }
    return items;
  }
  // Sets the thread count when --threads was given (else every core, OpenMP's default).
  void apply_threads() const {
    if (has("--threads")) set_num_threads(static_cast<int>(integer("--threads")));
  }
  float real(const std::string& flag) const {
    const std::string v = str(flag);
    char* end = nullptr;
    const float x = std::strtof(v.c_str(), &end);
    PDYOLO_CHECK(!v.empty() && *end == '\0', "option ", flag, ": '", v, "' is not a number");
    return x;
  }

 private:
  // A flag the code asks for must be declared: asking for another is a bug in the command.
  const Flag& declared(const std::string& flag) const {
    const Flag* f = spec_.find(flag);
    PDYOLO_CHECK(f, spec_.name, ": the command reads option ", flag, " but does not declare it");
    return *f;
  }

  const CommandSpec& spec_;
  std::map<std::string, std::string> values_;
};

}  // namespace pdyolo::cli
