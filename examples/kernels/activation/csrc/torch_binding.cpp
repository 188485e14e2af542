// Registers the activation ops with the PyTorch dispatcher.
//
// The namespace is given at compile time (-DKERNEL_NAMESPACE=_activation_abc1234) and is unique per
// build, so two versions of this kernel can be loaded into one process without their registrations
// colliding; Python reaches the ops as torch.ops.<namespace>.<op>.
#include <torch/library.h>

#include "activation.h"

#ifndef KERNEL_NAMESPACE
#error "KERNEL_NAMESPACE must be defined, e.g. -DKERNEL_NAMESPACE=_activation_abc1234"
#endif

// TORCH_LIBRARY pastes its first argument into identifiers, and an argument of a macro that is
// pasted is not expanded first; one more level of macro makes KERNEL_NAMESPACE expand before that.
#define TORCH_LIBRARY_EXPAND(NAME, MODULE) TORCH_LIBRARY(NAME, MODULE)

TORCH_LIBRARY_EXPAND(KERNEL_NAMESPACE, ops) {
  // `Tensor!` marks `out` as mutated, which the dispatcher and torch.compile rely on.
  ops.def("gelu_fast(Tensor! out, Tensor input) -> ()");
  ops.def("gelu(Tensor! out, Tensor input) -> ()");
  ops.def("gelu_tanh(Tensor! out, Tensor input) -> ()");
  ops.def("silu(Tensor! out, Tensor input) -> ()");
  ops.def("silu_and_mul(Tensor! out, Tensor input) -> ()");

  // c10::kCPU is torch::kCPU; naming it here spares including all of <torch/all.h>.
  ops.impl("gelu_fast", c10::kCPU, &gelu_fast_cpu);
  ops.impl("gelu", c10::kCPU, &gelu_cpu);
  ops.impl("gelu_tanh", c10::kCPU, &gelu_tanh_cpu);
  ops.impl("silu", c10::kCPU, &silu_cpu);
  ops.impl("silu_and_mul", c10::kCPU, &silu_and_mul_cpu);

#ifdef KERNELS_CUDA
  ops.impl("gelu_fast", c10::kCUDA, &gelu_fast_cuda);
  ops.impl("gelu", c10::kCUDA, &gelu_cuda);
  ops.impl("gelu_tanh", c10::kCUDA, &gelu_tanh_cuda);
  ops.impl("silu", c10::kCUDA, &silu_cuda);
  ops.impl("silu_and_mul", c10::kCUDA, &silu_and_mul_cuda);
#endif
}
