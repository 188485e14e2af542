// Argument checks shared by the CPU and CUDA implementations.
//
// The ops write into a caller-provided `out`, so every mismatch between `out` and `input` must be
// an error: silently writing through a wrong shape or dtype would corrupt memory.
#pragma once

#include <ATen/MemoryOverlap.h>
#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Exception.h>

#include <vector>

namespace activation {

inline void check_common(const at::Tensor& out, const at::Tensor& input, c10::DeviceType device,
                         const char* op) {
  TORCH_CHECK(input.device().type() == device, op, ": expected input on ", device, ", got ",
              input.device());
  TORCH_CHECK(out.device() == input.device(), op, ": out is on ", out.device(),
              " but input is on ", input.device());
  TORCH_CHECK(out.scalar_type() == input.scalar_type(), op, ": out has dtype ",
              out.scalar_type(), " but input has dtype ", input.scalar_type());
  // The kernels index flat memory.
  TORCH_CHECK(input.is_contiguous(), op, ": input must be contiguous");
  TORCH_CHECK(out.is_contiguous(), op, ": out must be contiguous");
}

// Elementwise ops: `out` has the shape of `input`; `out` may be `input` itself (in place), but may
// not overlap it partially.
inline void check_unary(const at::Tensor& out, const at::Tensor& input, c10::DeviceType device,
                        const char* op) {
  check_common(out, input, device, op);
  TORCH_CHECK(out.sizes() == input.sizes(), op, ": out has shape ", out.sizes(),
              " but input has shape ", input.sizes());
  at::assert_no_partial_overlap(out, input);
}

// Gated ops: `input` is [..., 2 * d] and `out` is [..., d]; they may not overlap at all, since a
// row of `out` can lie over input rows that are still to be read.
inline void check_gated(const at::Tensor& out, const at::Tensor& input, c10::DeviceType device,
                        const char* op) {
  check_common(out, input, device, op);
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) % 2 == 0, op,
              ": input's last dimension must be even, got shape ", input.sizes());
  std::vector<int64_t> expected = input.sizes().vec();
  expected.back() /= 2;
  TORCH_CHECK(out.sizes() == c10::IntArrayRef(expected), op, ": out has shape ", out.sizes(),
              ", expected ", c10::IntArrayRef(expected));
  at::assert_no_overlap(out, input);
}

}  // namespace activation
