"""A tiny package whose import loads its locked kernel.

``load_kernel`` reads the commit and content hash from the ``kernels.lock`` embedded in this
package's installed metadata and imports the kernel from the local cache only: it never makes a
request (``pdm install`` downloaded it).
"""

from kernels import load_kernel

KERNEL_REPO = "kernels-community/rmsnorm"

kernel = load_kernel(KERNEL_REPO)
