// Tensor, dtypes, storage, views, RNG, printing, parallel_for, device tag.
#include "test_main.hpp"

#include <algorithm>
#include <iterator>

#include <set>

#include "test_util.hpp"

using namespace pdyolo;

TEST_CASE("dtype sizes and names") {
  CHECK(dtype_size(DType::f32) == 4);
  CHECK(dtype_size(DType::f16) == 2);
  CHECK(dtype_size(DType::i8) == 1);
  CHECK(dtype_size(DType::u8) == 1);
  CHECK(dtype_size(DType::i32) == 4);
  CHECK(dtype_size(DType::i64) == 8);
  CHECK(std::string(dtype_name(DType::f16)) == "f16");
}

TEST_CASE("half conversion matches IEEE binary16 with round-to-nearest-even") {
  CHECK(float_to_half_bits(1.0f) == 0x3C00);
  CHECK(float_to_half_bits(-2.0f) == 0xC000);
  CHECK(float_to_half_bits(65504.0f) == 0x7BFF);       // largest finite half
  CHECK(float_to_half_bits(65520.0f) == 0x7C00);       // rounds up to inf
  CHECK(float_to_half_bits(1e9f) == 0x7C00);
  CHECK(float_to_half_bits(5.9604645e-8f) == 0x0001);  // smallest subnormal
  CHECK(float_to_half_bits(2.9802322e-8f) == 0x0000);  // exactly half of it: ties to even (0)
  CHECK(float_to_half_bits(6.1035156e-5f) == 0x0400);  // smallest normal
  CHECK(float_to_half_bits(1.0f + 1.0f / 2048) == 0x3C00);          // tie → even mantissa
  CHECK(float_to_half_bits(1.0f + 3.0f / 2048) == 0x3C02);          // tie → even (up)
  CHECK(std::isnan(half_bits_to_float(float_to_half_bits(std::nanf("")))));
  CHECK(std::isinf(half_bits_to_float(0x7C00)));
  // Every finite half value converts to float and back exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    const float f = half_bits_to_float(static_cast<uint16_t>(h));
    if (float_to_half_bits(f) != h) {
      FAIL("round trip failed for 0x" << std::hex << h);
      break;
    }
  }
}

TEST_CASE("factories, shape queries and element access") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.dim() == 2);
  CHECK(t.numel() == 6);
  CHECK(t.size(-1) == 3);
  CHECK(t.strides() == Shape{3, 1});
  CHECK(t.at({1, 2}) == 6.0);
  CHECK(Tensor::zeros({2, 2}).to_vector() == std::vector<float>(4, 0.0f));
  CHECK(Tensor::full({3}, 2.5).to_vector() == std::vector<float>(3, 2.5f));
  CHECK(Tensor::scalar(4.0f).item() == 4.0f);
  CHECK(Tensor::scalar(4.0f).dim() == 0);
  CHECK(test::error_of([&] { t.item(); }).find("6 elements") != std::string::npos);
  CHECK(test::error_of([] { Tensor::from_vector({1, 2, 3}, {2, 2}); }).find("do not fill") != std::string::npos);
  CHECK(test::error_of([&] { t.data<int32_t>(); }).find("holds f32") != std::string::npos);
  CHECK(test::error_of([] { Tensor().shape(); }).find("undefined") != std::string::npos);
}

TEST_CASE("up to 6 dimensions; a 7th is an error") {
  Tensor six = Tensor::zeros({1, 2, 1, 2, 1, 2});
  CHECK(six.numel() == 8);
  CHECK(test::error_of([] { Tensor::zeros({1, 1, 1, 1, 1, 1, 1}); }).find("at most 6") != std::string::npos);
  CHECK(test::error_of([&] { six.reshape({1, 1, 1, 1, 1, 1, 8}); }).find("at most 6") != std::string::npos);
}

TEST_CASE("storage is 64-byte aligned and shared by views") {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<uintptr_t>(t.data<float>()) % 64 == 0);
  }
  Tensor base = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor view = base.narrow(1, 1, 2);
  view.detach().fill_(9.0);
  CHECK(base.to_vector() == std::vector<float>{0, 9, 9, 3, 9, 9});
}

TEST_CASE("the host block cache reuses freed large blocks only while a scope holds it on") {
  const Shape large{1 << 17};  // 512 KiB, above kMinCachedBytes
  auto address_after_free = [&](const Shape& shape) {
    const void* freed = Tensor::empty(shape).data<float>();
    const void* next = Tensor::empty(shape).data<float>();
    return std::make_pair(freed, next);
  };
  HostBlockCache& cache = HostBlockCache::instance();
  REQUIRE(cache.held_bytes() == 0);  // off by default
  {
    const HostBlockCacheScope scope;
    auto [freed, next] = address_after_free(large);
    CHECK(next == freed);  // the same block came back
    CHECK(cache.held_bytes() > 0);
    CHECK(reinterpret_cast<uintptr_t>(next) % 64 == 0);
    { const Tensor smaller = Tensor::empty({(1 << 17) - 64}); CHECK(smaller.data<float>() != freed); }  // exact sizes only
    const size_t held = cache.held_bytes();
    { const Tensor small = Tensor::empty({1000}); }  // small blocks are not kept
    CHECK(cache.held_bytes() == held);
  }
  CHECK(cache.held_bytes() == 0);  // the scope's end frees them
  {
    const HostBlockCacheScope outer;
    {
      const HostBlockCacheScope tiny_limit(1 << 10);  // below one block: nothing is kept
      { const Tensor t = Tensor::empty(large); }
      CHECK(cache.held_bytes() == 0);
    }
    { const Tensor t = Tensor::empty(large); }  // the outer scope's limit is back
    CHECK(cache.held_bytes() > 0);
  }
  CHECK(cache.limit() == 0);
}

TEST_CASE("views: reshape, permute, transpose, narrow, expand, contiguous") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(t.reshape({3, 2}).at({2, 1}) == 5.0);
  CHECK(t.reshape({-1}).shape() == Shape{6});
  CHECK(test::error_of([&] { t.reshape({4, 2}); }).find("does not fit 6") != std::string::npos);

  Tensor p = t.permute({1, 0});
  CHECK(p.shape() == Shape{3, 2});
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.contiguous().to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(p.reshape({6}).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});  // copies a non-contiguous view
  CHECK(t.transpose(0, 1).at({2, 0}) == 2.0);

  Tensor n = t.narrow(1, 1, 2);
  CHECK(n.to_vector() == std::vector<float>{1, 2, 4, 5});
  CHECK(test::error_of([&] { t.narrow(1, 2, 2); }).find("outside axis 1") != std::string::npos);

  Tensor e = Tensor::from_vector({1, 2, 3}, {3}).expand({2, 3});
  CHECK(e.strides() == Shape{0, 1});
  CHECK(e.contiguous().to_vector() == std::vector<float>{1, 2, 3, 1, 2, 3});

  Tensor four = Tensor::normal({2, 3, 4, 5});
  Tensor back = four.permute({2, 0, 3, 1}).permute({1, 3, 0, 2});
  CHECK(back.contiguous().to_vector() == four.to_vector());
}

TEST_CASE("dtype conversion for every pair") {
  const std::vector<float> values{-3.0f, 0.0f, 1.0f, 7.0f, 100.0f};
  Tensor src = Tensor::from_vector(values, {5});
  for (DType t : {DType::f32, DType::f16, DType::i8, DType::i32, DType::i64}) {
    CAPTURE(dtype_name(t));
    Tensor c = src.to(t);
    CHECK(c.dtype() == t);
    CHECK(c.to(DType::f32).to_vector() == values);
    for (DType u : {DType::f32, DType::f16, DType::i8, DType::i32, DType::i64})
      CHECK(c.to(u).to(DType::f32).to_vector() == values);
  }
  CHECK(Tensor::from_vector(std::vector<uint8_t>{0, 200, 255}, {3}).to(DType::f32).to_vector() ==
        std::vector<float>{0, 200, 255});
  CHECK(Tensor::from_vector({1.5f, -2.7f}, {2}).to(DType::i32).to_vector() == std::vector<float>{1, -2});
  CHECK(Tensor::from_vector({0.1f}, {1}).to(DType::f16).to(DType::f32).item() == doctest::Approx(0.0999755859375));
  // Non-contiguous integer views copy correctly too.
  Tensor ints = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(ints.transpose(0, 1).contiguous().to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("copy_ converts and checks shapes") {
  Tensor dst = Tensor::zeros({2, 2}, DType::f16);
  dst.copy_(Tensor::from_vector({1, 2, 3, 4}, {2, 2}).transpose(0, 1));
  CHECK(dst.to_vector() == std::vector<float>{1, 3, 2, 4});
  CHECK(test::error_of([&] { dst.copy_(Tensor::zeros({4})); }).find("[4]") != std::string::npos);
}

TEST_CASE("seeded RNG is deterministic and has the right moments") {
  Generator a(42), b(42), c(43);
  CHECK(Tensor::normal({100}, 0, 1, a).to_vector() == Tensor::normal({100}, 0, 1, b).to_vector());
  CHECK(Tensor::normal({100}, 0, 1, a).to_vector() != Tensor::normal({100}, 0, 1, c).to_vector());
  Generator g(7);
  const auto n = Tensor::normal({200000}, 1.0f, 2.0f, g).to_vector();
  double mean = 0, var = 0;
  for (float v : n) mean += v;
  mean /= n.size();
  for (float v : n) var += (v - mean) * (v - mean);
  var /= n.size();
  CHECK(mean == doctest::Approx(1.0).epsilon(0.02));
  CHECK(var == doctest::Approx(4.0).epsilon(0.02));
  const auto u = Tensor::uniform({100000}, -1.0f, 3.0f, g).to_vector();
  float lo = 10, hi = -10;
  double um = 0;
  for (float v : u) lo = std::min(lo, v), hi = std::max(hi, v), um += v;
  CHECK(lo >= -1.0f);
  CHECK(hi < 3.0f);
  CHECK(um / u.size() == doctest::Approx(1.0).epsilon(0.02));
  // A fixed seed gives a fixed first value on every platform.
  Generator fixed(0);
  const uint64_t first = fixed.next_u64();
  Generator again(0);
  CHECK(again.next_u64() == first);
}

TEST_CASE("printing is readable and summarises large tensors") {
  const std::string small = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).str();
  CHECK(small.find("shape=[2, 2]") != std::string::npos);
  CHECK(small.find("dtype=f32") != std::string::npos);
  CHECK(small.find("4.0000") != std::string::npos);
  const std::string big = Tensor::zeros({100}).str();
  CHECK(big.find("...") != std::string::npos);
  CHECK(Tensor::from_vector(std::vector<int32_t>{7, 8}, {2}).str().find("[7, 8]") != std::string::npos);
}

TEST_CASE("parallel_for covers the range exactly once") {
  std::vector<int> hits(100003, 0);
  parallel_for(0, static_cast<int64_t>(hits.size()), 100, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) hits[i]++;
  });
  CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  std::vector<int> tasks(37, 0);
  parallel_tasks(37, [&](int64_t t) { tasks[t]++; });
  CHECK(std::all_of(tasks.begin(), tasks.end(), [](int h) { return h == 1; }));
}

TEST_CASE("device tag: cpu by default; cuda needs a CUDA build") {
  Tensor t = Tensor::zeros({2});
  CHECK(t.device() == cpu_device());
  CHECK(t.device().str() == "cpu");
  CHECK(cuda_device(1).str() == "cuda:1");
#ifndef PDYOLO_WITH_CUDA
  CHECK(cuda::device_count() == 0);
  CHECK(test::error_of([&] { t.to(cuda_device()); }).find("built without") != std::string::npos);
#endif
}

TEST_CASE("backends: supports() says what exists and nothing claims cuda") {
  CHECK(supports(OpKind::conv2d, Backend::ref, DType::f32));
  CHECK(supports(OpKind::conv2d, Backend::cpu, DType::f32));
  CHECK_FALSE(supports(OpKind::conv2d, Backend::cpu, DType::i8));
  CHECK(supports(OpKind::batch_norm2d, Backend::cpu, DType::f32));
  CHECK_FALSE(supports(OpKind::reduce, Backend::cpu, DType::f32));
  for (OpKind op : {OpKind::copy, OpKind::binary, OpKind::unary, OpKind::reduce, OpKind::softmax, OpKind::matmul,
                    OpKind::conv2d, OpKind::batch_norm2d, OpKind::max_pool2d, OpKind::upsample_nearest}) {
    CHECK(supports(op, Backend::ref, DType::f32));
    CHECK_FALSE(supports(op, Backend::cuda, DType::f32));
  }
  {
    BackendScope scope(Backend::ref);
    CHECK(select_backend(OpKind::matmul, DType::f32) == Backend::ref);
  }
  CHECK(select_backend(OpKind::matmul, DType::f32) == Backend::cpu);
  CHECK(select_backend(OpKind::reduce, DType::f32) == Backend::ref);
  CHECK(test::error_of([] { select_backend(OpKind::matmul, DType::i8); }).find("matmul: no kernel for backend cpu or ref with dtype i8") !=
        std::string::npos);
  // Running on a backend without the op names the op, the backend and the dtype.
  CHECK(test::error_of([] { run_on(Backend::cuda, OpKind::conv2d, [](auto) {}); }).find("conv2d: backend cuda has no kernel for dtype f32") !=
        std::string::npos);
  {
    BackendScope scope(Backend::cuda);  // preferred but empty: every op falls back to the reference kernels
    CHECK(select_backend(OpKind::conv2d, DType::f32) == Backend::ref);
  }
  // The table is the kernel sets' own lists, f32 and u8: every op a set lists is supported, nothing
  // else (copies aside: core's loops, every dtype on both host backends).
  auto listed = [](const auto& list, OpKind op) { return std::find(std::begin(list), std::end(list), op) != std::end(list); };
  for (OpKind op : kAllOpKinds) {
    CAPTURE(op_kind_name(op));
    CHECK(supports(op, Backend::cpu, DType::f32) == (listed(CpuKernels::ops, op) || op == OpKind::copy));
    CHECK(supports(op, Backend::cpu, DType::u8) == (listed(CpuKernels::u8_ops, op) || op == OpKind::copy));
    CHECK(supports(op, Backend::ref, DType::u8) == (listed(RefKernels::u8_ops, op) || op == OpKind::copy));
    CHECK_FALSE(supports(op, Backend::cuda, DType::u8));
  }
  // int8 runs convs, adds and level moves on both host backends; activations are tables inside the convs.
  for (Backend b : {Backend::ref, Backend::cpu}) {
    CHECK(supports(OpKind::conv2d, b, DType::u8));
    CHECK(supports(OpKind::reorg, b, DType::u8));
    CHECK_FALSE(supports(OpKind::unary, b, DType::u8));
  }
}

TEST_CASE("printing switches to scientific notation for tiny or huge magnitudes") {
  CHECK(Tensor::from_vector({1e-6f, -2e-6f}, {2}).str().find("1.0000e-06") != std::string::npos);
  CHECK(Tensor::from_vector({3e7f}, {1}).str().find("3.0000e+07") != std::string::npos);
  CHECK(Tensor::from_vector({0.5f}, {1}).str().find("0.5000") != std::string::npos);
}
