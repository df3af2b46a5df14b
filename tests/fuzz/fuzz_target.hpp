// What every fuzz target shares: libFuzzer hands it bytes, it feeds them to one of pdyolo's entry
// points for untrusted files. A pdyolo::Error is the right answer to bad input and is swallowed;
// anything else — another exception (it ends in terminate), a crash, a sanitizer report, a hang or
// an allocation beyond -rss_limit_mb — is a finding libFuzzer stops on and saves.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pdyolo/core/error.hpp"

namespace pdyolo::fuzz {

template <class Parse>
int run(const uint8_t* data, size_t size, Parse&& parse) {
  const std::vector<char> bytes(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  try {
    parse(bytes);
  } catch (const Error&) {
  }
  return 0;
}

// For invariants a target checks beyond "no crash": a failure is a finding, not an Error.
inline void require(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace pdyolo::fuzz
