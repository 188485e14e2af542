// Declarations of the activation kernels registered in torch_binding.cpp.
//
// Every op follows the out-parameter convention of the upstream `activation` kernel: the caller
// allocates `out` (same dtype and device as `input`, contiguous) and the op fills it.
#pragma once

#include <ATen/core/Tensor.h>

// CPU implementations (activation_cpu.cpp): float32, float64, bfloat16 and float16.
void gelu_fast_cpu(at::Tensor& out, const at::Tensor& input);
void gelu_cpu(at::Tensor& out, const at::Tensor& input);
void gelu_tanh_cpu(at::Tensor& out, const at::Tensor& input);
void silu_cpu(at::Tensor& out, const at::Tensor& input);
void silu_and_mul_cpu(at::Tensor& out, const at::Tensor& input);

#ifdef KERNELS_CUDA
// CUDA implementations (activation_cuda.cu): float32, float16 and bfloat16.
void gelu_fast_cuda(at::Tensor& out, const at::Tensor& input);
void gelu_cuda(at::Tensor& out, const at::Tensor& input);
void gelu_tanh_cuda(at::Tensor& out, const at::Tensor& input);
void silu_cuda(at::Tensor& out, const at::Tensor& input);
void silu_and_mul_cuda(at::Tensor& out, const at::Tensor& input);
#endif
