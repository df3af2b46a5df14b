// Seeded, deterministic random numbers: xoshiro256** seeded through splitmix64.
// The same seed gives the same sequence on every platform and compiler.
#pragma once
#include <cmath>
#include <cstdint>

namespace pdyolo {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }

  void manual_seed(uint64_t seed) {
    uint64_t z = seed;
    for (auto& word : state_) word = splitmix64(z);
    has_spare_normal_ = false;
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 24 random bits: every value exactly representable in float.
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float low, float high) { return low + (high - low) * uniform(); }

  // Standard normal by the Box–Muller transform (pairs: the second value is kept for the next call).
  float normal(float mean = 0.0f, float stddev = 1.0f) {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return mean + stddev * spare_normal_;
    }
    double u1 = 0.0;
    while (u1 <= 0.0) u1 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
    const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    spare_normal_ = static_cast<float>(radius * std::sin(angle));
    has_spare_normal_ = true;
    return mean + stddev * static_cast<float>(radius * std::cos(angle));
  }

  // Uniform integer in [0, n).
  uint64_t randint(uint64_t n) { return n == 0 ? 0 : next_u64() % n; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_[4] = {};
  float spare_normal_ = 0.0f;
  bool has_spare_normal_ = false;
};

// The process-wide generator used when a call is given none.
inline Generator& default_generator() {
  static Generator generator(0);
  return generator;
}
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace pdyolo
