// The CUDA runtime entry points (built only with -DPDYOLO_CUDA=ON). Without a GPU it reports a skip.
#include "test_main.hpp"

#include "test_util.hpp"

using namespace pdyolo;

TEST_CASE("tensors move to the GPU and back unchanged" * doctest::test_suite("requires_gpu")) {
  if (cuda::device_count() == 0) {
    return test::skip("no CUDA device on this machine");
  }
  const Tensor host = Tensor::normal({3, 5, 7});
  const Tensor device = host.to(cuda_device());
  CHECK(device.device() == cuda_device());
  CHECK(test::error_of([&] { device.data<float>(); }).find("cuda:0") != std::string::npos);
  const Tensor back = device.to(cpu_device());
  CHECK(back.to_vector() == host.to_vector());
  const Tensor view = host.transpose(0, 2);  // non-contiguous views are made contiguous on the way
  CHECK(view.to(cuda_device()).to(cpu_device()).to_vector() == view.contiguous().to_vector());
}
