// CPU implementations of the activation ops: float32, float64, bfloat16 and float16.
//
// Reduced-precision inputs are computed in float (at::opmath_type), as PyTorch's own kernels do, so
// the results match torch's reference functions to rounding. Work is split over threads with
// at::parallel_for, which uses the same OpenMP pool as the rest of ATen.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "activation.h"
#include "checks.h"

namespace {

// Elements per task: transcendental functions cost tens of cycles each, so a task far smaller
// than ATen's default grain (32768) already amortises the threading overhead.
constexpr int64_t kGrain = 4096;

// sqrt(2 / pi) and 1 / sqrt(2).
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kSqrtHalf = 0.70710678118654752440084436210485;
constexpr double kCoeff = 0.044715;

// gelu_fast: the tanh form of torch.nn.functional.gelu, 0.5 x (1 + tanh(u)) with
// u = sqrt(2/pi) x (1 + 0.044715 x^2), computed as x / (1 + exp(-2u)) (the same function, since
// 1 + tanh(u) = 2 / (1 + exp(-2u))): one exp is cheaper than tanh, and for negative x this form has
// no cancellation in 1 + tanh(u).
template <typename T>
inline T gelu_fast_op(T x) {
  const T u = T(kSqrt2OverPi) * x * (T(1) + T(kCoeff) * x * x);
  return x / (T(1) + std::exp(T(-2) * u));
}

// gelu: the exact erf form, torch.nn.functional.gelu(x).
template <typename T>
inline T gelu_op(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(kSqrtHalf)));
}

// gelu_tanh: torch.nn.functional.gelu(x, approximate="tanh"), in torch's own formulation.
template <typename T>
inline T gelu_tanh_op(T x) {
  const T inner = T(kSqrt2OverPi) * (x + T(kCoeff) * x * x * x);
  return T(0.5) * x * (T(1) + std::tanh(inner));
}

template <typename T>
inline T silu_op(T x) {
  return x / (T(1) + std::exp(-x));
}

template <typename scalar_t, typename Op>
void unary_loop(at::Tensor& out, const at::Tensor& input, Op op) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  scalar_t* dst = out.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, input.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dst[i] = static_cast<scalar_t>(op(static_cast<acc_t>(in[i])));
    }
  });
}

template <typename scalar_t>
void silu_and_mul_loop(at::Tensor& out, const at::Tensor& input) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t d = out.size(-1);
  const int64_t rows = out.numel() / d;
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  scalar_t* dst = out.mutable_data_ptr<scalar_t>();
  const int64_t grain = std::max<int64_t>(1, kGrain / d);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* x = in + r * 2 * d;
      const scalar_t* gate = x + d;
      scalar_t* o = dst + r * d;
      for (int64_t j = 0; j < d; ++j) {
        const acc_t a = static_cast<acc_t>(x[j]);
        o[j] = static_cast<scalar_t>(silu_op(a) * static_cast<acc_t>(gate[j]));
      }
    }
  });
}

#define ACTIVATION_CPU_UNARY(NAME, OP)                                                   \
  void NAME##_cpu(at::Tensor& out, const at::Tensor& input) {                            \
    activation::check_unary(out, input, c10::DeviceType::CPU, #NAME);                    \
    if (input.numel() == 0) return;                                                      \
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::BFloat16, at::ScalarType::Half,      \
                                    input.scalar_type(), #NAME "_cpu", [&] {              \
                                      unary_loop<scalar_t>(out, input,                   \
                                                           [](auto x) { return OP(x); }); \
                                    });                                                  \
  }

}  // namespace

ACTIVATION_CPU_UNARY(gelu_fast, gelu_fast_op)
ACTIVATION_CPU_UNARY(gelu, gelu_op)
ACTIVATION_CPU_UNARY(gelu_tanh, gelu_tanh_op)
ACTIVATION_CPU_UNARY(silu, silu_op)

void silu_and_mul_cpu(at::Tensor& out, const at::Tensor& input) {
  activation::check_gated(out, input, c10::DeviceType::CPU, "silu_and_mul");
  if (out.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::BFloat16, at::ScalarType::Half,
                                  input.scalar_type(), "silu_and_mul_cpu",
                                  [&] { silu_and_mul_loop<scalar_t>(out, input); });
}
