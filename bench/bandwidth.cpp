// Memory bandwidth of this machine's cores, for the int8 executor's roofline (bench/RESULTS.md):
// each of T threads copies its own buffer of S bytes R times (read + write = 2·S·R bytes moved per
// thread); prints GB/s for a few sizes (in L2, in L3, in DRAM).
//   g++ -std=c++17 -O2 -fopenmp -static bench/bandwidth.cpp -o build-dev/bandwidth && build-dev/bandwidth 2
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  omp_set_num_threads(threads);
  for (size_t mb : {1, 4, 32, 256}) {
    const size_t bytes = mb << 20;
    const int rounds = static_cast<int>(std::max<size_t>(4, (size_t{2} << 30) / bytes));
    double seconds = 0;
#pragma omp parallel reduction(max : seconds)
    {
      std::vector<char> a(bytes, 1), b(bytes, 2);
      std::memcpy(b.data(), a.data(), bytes);  // warm
#pragma omp barrier
      const auto start = std::chrono::steady_clock::now();
      for (int r = 0; r < rounds; ++r) std::memcpy((r % 2 ? a : b).data(), (r % 2 ? b : a).data(), bytes);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::printf("%d threads, %4zu MB per thread: %.1f GB/s (read + write)\n", threads, mb, 2.0 * bytes * rounds * threads / seconds / 1e9);
  }
}
