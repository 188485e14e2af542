// CUDA implementations of the activation ops: float32, float16 and bfloat16.
//
// Each thread moves 16 bytes per load and store (8 halves or 4 floats) when both tensors are 16-byte
// aligned, and falls back to one element at a time otherwise. Loops are grid-stride, so a grid sized
// to fill the GPU covers any number of elements. Math is done in float, as PyTorch's own kernels do
// for reduced precision, so results match torch's reference functions to rounding. Kernels run on
// the caller's current stream on the input's device.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "activation.h"
#include "checks.h"

namespace {

constexpr int kVecBytes = 16;
constexpr int kThreads = 256;
// Blocks per SM before the grid-stride loops take over. Streaming kernels are bound by how many
// loads are in flight; on an H100 (64M bf16 elements) 8 blocks/SM reached 2.25 TB/s, 64 reached
// 2.6 TB/s, as fast as torch's own elementwise kernels (unrolling 4 packs per thread at 8 blocks/SM
// reached 2.35).
constexpr int kBlocksPerSm = 64;

// sqrt(2 / pi) and 1 / sqrt(2).
constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
constexpr float kSqrtHalf = 0.70710678118654752440084436210485f;
constexpr float kCoeff = 0.044715f;

// The tanh GELU as x / (1 + exp(-2u)), u = sqrt(2/pi) x (1 + 0.044715 x^2): equal to
// 0.5 x (1 + tanh(u)), cheaper, and free of cancellation for negative x.
struct GeluFastOp {
  __device__ __forceinline__ float operator()(float x) const {
    const float u = kSqrt2OverPi * x * (1.0f + kCoeff * x * x);
    return x / (1.0f + expf(-2.0f * u));
  }
};

struct GeluOp {
  __device__ __forceinline__ float operator()(float x) const {
    return 0.5f * x * (1.0f + erff(x * kSqrtHalf));
  }
};

struct GeluTanhOp {
  __device__ __forceinline__ float operator()(float x) const {
    const float inner = kSqrt2OverPi * (x + kCoeff * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
  }
};

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

struct SiluOp {
  __device__ __forceinline__ float operator()(float x) const { return silu(x); }
};

// VEC consecutive elements, aligned so that one instruction loads or stores them all.
template <typename scalar_t, int VEC>
struct alignas(sizeof(scalar_t) * VEC) Pack {
  scalar_t v[VEC];
};

// Grid-stride over 16-byte packs, then the scalar tail. No __restrict__: the unary ops may run in
// place (out == input).
template <typename scalar_t, int VEC, typename Op>
__global__ void unary_kernel(scalar_t* out, const scalar_t* input, int64_t n, Op op) {
  using P = Pack<scalar_t, VEC>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n_packs = n / VEC;
  const P* in_packs = reinterpret_cast<const P*>(input);
  P* out_packs = reinterpret_cast<P*>(out);
  for (int64_t i = tid; i < n_packs; i += stride) {
    P p = in_packs[i];
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      p.v[j] = static_cast<scalar_t>(op(static_cast<float>(p.v[j])));
    }
    out_packs[i] = p;
  }
  // The last n % VEC elements, which do not fill a pack.
  for (int64_t i = n_packs * VEC + tid; i < n; i += stride) {
    out[i] = static_cast<scalar_t>(op(static_cast<float>(input[i])));
  }
}

// One row of `out` ([rows, d]) per block iteration; input rows are [x | gate], 2 * d wide.
// Requires d % VEC == 0 and 16-byte aligned bases when VEC > 1, so every row start is aligned.
template <typename scalar_t, int VEC>
__global__ void silu_and_mul_kernel(scalar_t* out, const scalar_t* input, int64_t rows,
                                    int64_t d) {
  using P = Pack<scalar_t, VEC>;
  const int64_t d_packs = d / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const P* x = reinterpret_cast<const P*>(input + row * 2 * d);
    const P* gate = reinterpret_cast<const P*>(input + row * 2 * d + d);
    P* o = reinterpret_cast<P*>(out + row * d);
    for (int64_t i = threadIdx.x; i < d_packs; i += blockDim.x) {
      const P a = x[i];
      const P g = gate[i];
      P r;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        r.v[j] = static_cast<scalar_t>(silu(static_cast<float>(a.v[j])) *
                                       static_cast<float>(g.v[j]));
      }
      o[i] = r;
    }
  }
}

bool is_aligned(const void* ptr) {
  return reinterpret_cast<std::uintptr_t>(ptr) % kVecBytes == 0;
}

// Streaming multiprocessors of the current device. cudaDeviceGetAttribute is a cheap query, unlike
// cudaGetDeviceProperties.
int64_t sm_count() {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount,
                                        c10::cuda::current_device()));
  return sms;
}

// Blocks for `work_items` items of one thread each, at most kBlocksPerSm per SM; the grid-stride
// loops cover whatever is left.
int64_t grid_for(int64_t work_items, int threads_per_block) {
  const int64_t wanted = (work_items + threads_per_block - 1) / threads_per_block;
  return std::max<int64_t>(1, std::min<int64_t>(wanted, sm_count() * kBlocksPerSm));
}

template <typename scalar_t, typename Op>
void launch_unary(at::Tensor& out, const at::Tensor& input, Op op) {
  constexpr int VEC = kVecBytes / sizeof(scalar_t);
  const int64_t n = input.numel();
  scalar_t* dst = out.mutable_data_ptr<scalar_t>();
  const scalar_t* src = input.const_data_ptr<scalar_t>();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (is_aligned(dst) && is_aligned(src)) {
    const int64_t blocks = grid_for((n + VEC - 1) / VEC, kThreads);
    unary_kernel<scalar_t, VEC, Op><<<blocks, kThreads, 0, stream>>>(dst, src, n, op);
  } else {
    const int64_t blocks = grid_for(n, kThreads);
    unary_kernel<scalar_t, 1, Op><<<blocks, kThreads, 0, stream>>>(dst, src, n, op);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_silu_and_mul(at::Tensor& out, const at::Tensor& input) {
  constexpr int VEC = kVecBytes / sizeof(scalar_t);
  const int64_t d = out.size(-1);
  const int64_t rows = out.numel() / d;
  scalar_t* dst = out.mutable_data_ptr<scalar_t>();
  const scalar_t* src = input.const_data_ptr<scalar_t>();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool vectorised = d % VEC == 0 && is_aligned(dst) && is_aligned(src);
  const int64_t items_per_row = vectorised ? d / VEC : d;
  // One warp at least, one thread per item up to 1024.
  const int threads =
      static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, (items_per_row + 31) / 32 * 32)));
  const int64_t sms = sm_count();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(rows, sms * (2048 / threads) * 4));
  if (vectorised) {
    silu_and_mul_kernel<scalar_t, VEC><<<blocks, threads, 0, stream>>>(dst, src, rows, d);
  } else {
    silu_and_mul_kernel<scalar_t, 1><<<blocks, threads, 0, stream>>>(dst, src, rows, d);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// float32, float16 and bfloat16; other dtypes fail with "<op>" not implemented for '<dtype>'.
#define ACTIVATION_DISPATCH_CUDA(TYPE, NAME, ...)                  \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                   \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

// One entry point per elementwise op; NAME must be a literal, since the dispatch macro keeps it in
// a constexpr for its error message.
#define ACTIVATION_CUDA_UNARY(NAME, OP)                                         \
  void NAME##_cuda(at::Tensor& out, const at::Tensor& input) {                  \
    activation::check_unary(out, input, c10::DeviceType::CUDA, #NAME);          \
    if (input.numel() == 0) return;                                             \
    const c10::cuda::CUDAGuard device_guard(input.device());                    \
    ACTIVATION_DISPATCH_CUDA(input.scalar_type(), #NAME "_cuda",                \
                             [&] { launch_unary<scalar_t>(out, input, OP{}); }); \
  }

}  // namespace

ACTIVATION_CUDA_UNARY(gelu_fast, GeluFastOp)
ACTIVATION_CUDA_UNARY(gelu, GeluOp)
ACTIVATION_CUDA_UNARY(gelu_tanh, GeluTanhOp)
ACTIVATION_CUDA_UNARY(silu, SiluOp)

void silu_and_mul_cuda(at::Tensor& out, const at::Tensor& input) {
  activation::check_gated(out, input, c10::DeviceType::CUDA, "silu_and_mul");
  if (out.numel() == 0) return;
  const c10::cuda::CUDAGuard device_guard(input.device());
  ACTIVATION_DISPATCH_CUDA(input.scalar_type(), "silu_and_mul_cuda",
                           [&] { launch_silu_and_mul<scalar_t>(out, input); });
}
