// A small command-line parser for the pdyolo subcommands: `--flag value` options and `--switch`
// booleans, with errors naming the flag.
#pragma once
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "pdyolo/core/error.hpp"

namespace pdyolo::cli {

class Args {
 public:
  // argv[first..] holds the options; `switches` take no value.
  Args(int argc, char** argv, int first, std::set<std::string> options, std::set<std::string> switches) {
    for (int i = first; i < argc; ++i) {
      const std::string flag = argv[i];
      if (switches.count(flag)) {
        values_[flag] = "1";
      } else if (options.count(flag)) {
        PDYOLO_CHECK(i + 1 < argc, "option ", flag, " needs a value");
        values_[flag] = argv[++i];
      } else {
        throw_error("unknown option '", flag, "'");
      }
    }
  }
  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string str(const std::string& flag, const std::string& fallback = "") const {
    auto it = values_.find(flag);
    return it == values_.end() ? fallback : it->second;
  }
  std::string required(const std::string& flag) const {
    PDYOLO_CHECK(has(flag), "option ", flag, " is required");
    return str(flag);
  }
  long long integer(const std::string& flag, long long fallback) const {
    if (!has(flag)) return fallback;
    const std::string v = str(flag);
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    PDYOLO_CHECK(!v.empty() && *end == '\0', "option ", flag, ": '", v, "' is not an integer");
    return n;
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace pdyolo::cli
