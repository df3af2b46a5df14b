# CMake glue for the optional dependencies. Every one is a Debian package found on the system;
# no third-party source is copied into this repository (scripts/install-deps.sh installs them).

# Eigen (libeigen3-dev): an alternative GEMM, compared against ours in tests and benchmarks.
set(PDYOLO_HAVE_EIGEN OFF)
if(PDYOLO_EIGEN)
  find_package(Eigen3 3.3 NO_MODULE QUIET)
  if(TARGET Eigen3::Eigen)
    add_library(pdyolo_eigen INTERFACE)
    target_link_libraries(pdyolo_eigen INTERFACE pdyolo Eigen3::Eigen)
    target_compile_definitions(pdyolo_eigen INTERFACE PDYOLO_WITH_EIGEN)
    set(PDYOLO_HAVE_EIGEN ON)
  else()
    message(STATUS "pdyolo: Eigen3 not found (apt-get install libeigen3-dev); Eigen comparisons are off")
  endif()
endif()

# stb (libstb-dev): image decoding and writing, and the plot/annotation font. Its implementation is
# compiled here from Debian's headers with zeroing allocators (stb_image_zeroed.cpp says why) into
# pdyolo_image, which whoever includes pdyolo/data/image_io.hpp, dataset.hpp or viz/draw.hpp links.
find_path(PDYOLO_STB_INCLUDE stb/stb_image.h)
if(NOT PDYOLO_STB_INCLUDE)
  message(FATAL_ERROR "pdyolo: stb not found (apt-get install libstb-dev)")
endif()
set(PDYOLO_STB_SOURCE ${CMAKE_CURRENT_LIST_DIR}/stb_image_zeroed.cpp)
set(PDYOLO_STB_WRITE_SOURCE ${CMAKE_CURRENT_LIST_DIR}/stb_image_write.cpp)
add_library(pdyolo_image STATIC ${PDYOLO_STB_SOURCE} ${PDYOLO_STB_WRITE_SOURCE})
target_link_libraries(pdyolo_image PUBLIC pdyolo)
target_include_directories(pdyolo_image SYSTEM PUBLIC ${PDYOLO_STB_INCLUDE})
# stb's own code: its warnings are not ours, and a few of UBSan's checks are off inside it (sanitizer
# builds; tests/fuzz/FUZZING.md). The decoder copies zero bytes to a null buffer for an empty PNG
# IDAT chunk, reads a JPEG symbol at a negative index inside its own Huffman table on corrupt
# codes, and, once a marker has ended a corrupt scan early, shifts a zero byte by 32 bits or more
# (its bit count went negative; zero shifted is zero whatever the hardware does with the count);
# the JPEG writer shifts negative coefficients left. Undefined by the letter, none leaves stb's
# memory or depends on the input's trust; AddressSanitizer still checks every access.
set(PDYOLO_STB_COMPILE_OPTIONS "-w;-fno-sanitize=nonnull-attribute,bounds,shift-exponent")
set(PDYOLO_STB_WRITE_COMPILE_OPTIONS "-w;-fno-sanitize=shift-base")
set_source_files_properties(${PDYOLO_STB_SOURCE} PROPERTIES COMPILE_OPTIONS "${PDYOLO_STB_COMPILE_OPTIONS}")
set_source_files_properties(${PDYOLO_STB_WRITE_SOURCE} PROPERTIES COMPILE_OPTIONS "${PDYOLO_STB_WRITE_COMPILE_OPTIONS}")

# doctest (doctest-dev) for the test suites: without it (a machine that ran only
# scripts/install-deps.sh, not --test) the suites are switched off, with a message, and the library
# and the command-line tool still build.
if(PDYOLO_BUILD_TESTS)
  find_package(doctest QUIET)
  if(NOT doctest_FOUND)
    message(WARNING "pdyolo: doctest not found (scripts/install-deps.sh --test installs it): the test suites are off")
    set(PDYOLO_BUILD_TESTS OFF)
  endif()
endif()

# Google Benchmark (libbenchmark-dev) for bench/.
if(PDYOLO_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# CUDA Toolkit (+ cuDNN later): kernels/cuda/*.cu compile into pdyolo_cuda.
if(PDYOLO_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  file(GLOB PDYOLO_CUDA_SOURCES ${PROJECT_SOURCE_DIR}/kernels/cuda/*.cu)
  add_library(pdyolo_cuda STATIC ${PDYOLO_CUDA_SOURCES})
  add_library(pdyolo::cuda ALIAS pdyolo_cuda)
  target_link_libraries(pdyolo_cuda PUBLIC pdyolo CUDA::cudart)
  target_compile_definitions(pdyolo_cuda PUBLIC PDYOLO_WITH_CUDA)
  set_target_properties(pdyolo_cuda PROPERTIES CUDA_ARCHITECTURES "80;90" POSITION_INDEPENDENT_CODE ON)
endif()
