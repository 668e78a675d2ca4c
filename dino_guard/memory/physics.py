"""Facts about the CUDA caching allocator and kernels that both estimators use.

No torch import: the analytic estimator and `dino-guard check` read these
constants too. Each number says where it comes from.
"""

from __future__ import annotations

# The caching allocator hands out blocks in multiples of 512 bytes, at
# least 512 (c10/cuda/CUDACachingAllocator.cpp, kMinBlockSize/round_size);
# max_memory_allocated() counts block sizes, not requested sizes.
BLOCK_BYTES = 512

# cuBLAS keeps one workspace per handle and stream, allocated through the
# caching allocator on the first matmul: 32 MiB on Hopper (sm90), 8.125 MiB
# on other GPUs (aten/src/ATen/cuda/CublasHandlePool.cpp,
# CUBLAS_WORKSPACE_CONFIG default). Handles are per thread, and autograd
# runs a CUDA backward on its own device thread: the forward's and the
# backward's workspaces are both alive at the peak. We assume Hopper's size.
CUBLAS_WORKSPACE_BYTES = 2 * 32 * 1024 * 1024

BYTES_PER = {"fp32": 4, "bf16": 2, "fp16": 2}


def ddp_bucket_bytes(trainable_params: int) -> int:
    """DistributedDataParallel's Reducer allocates one flat fp32 gradient
    buffer per bucket when it is built (gradient_as_bucket_view=False, the
    default): one more copy of the gradients, alive for the whole run."""
    return block_bytes(4 * trainable_params)


def block_bytes(nbytes: int) -> int:
    """What the allocator really takes for a request of `nbytes`."""
    if nbytes <= 0:
        return 0
    return -(-nbytes // BLOCK_BYTES) * BLOCK_BYTES


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def flash_backward_bytes(batch: int, heads: int, seq: int, head_dim: int) -> int:
    """Scratch of FlashAttention-2's backward (flash_api.cpp mha_bwd): an fp32
    dq accumulator of (batch, seq rounded to 128, heads, head_dim rounded to
    32 or 64) and the fp32 softmax row sums, held while the kernel runs."""
    seq_r = _round_up(seq, 128)
    dim_r = _round_up(head_dim, 32 if head_dim <= 128 else 64)
    return block_bytes(4 * batch * seq_r * heads * dim_r) + block_bytes(4 * batch * heads * seq_r)


def kernel_workspace_bytes(func, args, out) -> int:
    """Transient bytes a real CUDA kernel takes that its meta kernel does not show."""
    name = str(func)
    if name.startswith("aten._scaled_dot_product_flash_attention_backward"):
        query = args[1]  # (grad_out, query, key, value, ...): query is (B, H, N, D)
        batch, heads, seq, head_dim = query.shape
        return flash_backward_bytes(batch, heads, seq, head_dim)
    return 0
