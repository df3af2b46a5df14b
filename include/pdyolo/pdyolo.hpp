// pdyolo — umbrella header: everything the library offers, in dependency order.
#pragma once

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/autograd/engine.hpp"
#include "pdyolo/autograd/grad_check.hpp"
#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/ops/shape.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/ops/reduce.hpp"
#include "pdyolo/ops/matmul.hpp"
#include "pdyolo/ops/conv.hpp"
#include "pdyolo/ops/norm.hpp"
#include "pdyolo/ops/pool.hpp"
#include "pdyolo/ops/loss.hpp"
#include "pdyolo/nn/module.hpp"
#include "pdyolo/nn/layers.hpp"
#include "pdyolo/train/optim.hpp"
#include "pdyolo/io/npy.hpp"
#include "pdyolo/io/safetensors.hpp"

#define PDYOLO_VERSION "0.1.0"
