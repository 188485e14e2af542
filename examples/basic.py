"""The seed example: load the activation kernel from the Hub and run it.

Runs on CUDA when a GPU is present, on the CPU otherwise. Point ``HF_ENDPOINT`` at a local mirror
(``kernels serve``) to run without the public Hub.
"""

import torch
from kernels import get_kernel

# Download optimized kernels from the Hugging Face hub
activation = get_kernel("kernels-community/activation")

device = "cuda" if torch.cuda.is_available() else "cpu"
dtype = torch.float16 if device == "cuda" else torch.float32

# Random tensor
x = torch.randn((10, 10), dtype=dtype, device=device)

# Run the kernel
y = torch.empty_like(x)
activation.gelu_fast(y, x)

expected = torch.nn.functional.gelu(x, approximate="tanh")
torch.testing.assert_close(y, expected, rtol=1e-3, atol=1e-3)
print(y)
print(f"gelu_fast on {device} ({dtype}) matches torch.nn.functional.gelu(approximate='tanh')")
