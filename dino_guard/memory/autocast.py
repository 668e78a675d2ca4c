"""CUDA autocast and attention-kernel choice, emulated for meta tensors.

torch.autocast("cuda") only acts on CUDA tensors, and on a CPU-only machine
autograd refuses fake CUDA tensors, so the traced step runs on the meta
device and this torch-function mode does what CUDA autocast would: it sits
above autograd (like the real Autocast dispatch key), so its casts are
recorded and saved for backward exactly as on the GPU. The op lists follow
aten/src/ATen/autocast_mode.cpp (CUDA): matmuls and convolutions run in the
low precision, norms, softmax and reductions in fp32, everything else in
the dtype it is given. Casts of parameters are cached for the whole region,
as the real weight cache does.

Real autocast acts on aten ops, so it also sees the ops inside Python
composites (F.normalize's norm, the linears and attention inside
nn.MultiheadAttention). A torch-function mode would see only the outer
Python function, so while the mode is active torch.nn.functional's
override checks are switched off: its Python functions run their bodies
and every builtin they call comes through the mode.

scaled_dot_product_attention is routed to the kernel CUDA would pick on an
H100: FlashAttention-2 for bf16/fp16 without a mask, memory-efficient
attention otherwise (fp32, masks). Neither stores the N x N attention matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

LOW_PRECISION_OPS = frozenset({
    "linear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm",
    "mv", "addmv", "addr", "einsum", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "convolution", "prelu", "chain_matmul",
})
FP32_OPS = frozenset({
    "layer_norm", "group_norm", "softmax", "log_softmax", "exp", "log", "log2", "log10", "log1p",
    "expm1", "pow", "__pow__", "rsqrt", "reciprocal", "cumsum", "cumprod", "sum", "prod", "norm",
    "cosine_similarity", "logsumexp", "mse_loss", "l1_loss", "smooth_l1_loss", "nll_loss",
    "cross_entropy", "kl_div", "binary_cross_entropy_with_logits", "cdist", "softplus",
    "acos", "asin", "cosh", "sinh", "tan", "erfinv", "renorm", "dist", "cross_entropy_loss",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
    "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d", "_upsample_bilinear2d_aa",
})
OVERRIDE_CHECKS = ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")


def _no_override(*args, **kwargs) -> bool:
    return False
LOW = (torch.bfloat16, torch.float16)


class CudaAutocast(TorchFunctionMode):
    """Emulate torch.autocast("cuda", dtype) (dtype None: fp32, attention choice only)."""

    def __init__(self, dtype=None):
        super().__init__()
        self.dtype = dtype
        self.weight_cache: dict[int, torch.Tensor] = {}
        self._saved_checks: dict = {}

    def __enter__(self):
        self._saved_checks = {name: getattr(F, name) for name in OVERRIDE_CHECKS}
        for name in OVERRIDE_CHECKS:
            setattr(F, name, _no_override)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, check in self._saved_checks.items():
            setattr(F, name, check)
        self.weight_cache.clear()  # autocast drops its cached weight casts on exit
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self._attention(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if self.dtype is not None and name in LOW_PRECISION_OPS:
            args, kwargs = self._cast_all((args, kwargs), self.dtype)
        elif self.dtype is not None and name in FP32_OPS:
            args, kwargs = self._cast_all((args, kwargs), torch.float32)
        return func(*args, **kwargs)

    def _cast(self, value, dtype):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            return value
        if value.dtype in (dtype, torch.float64):
            return value
        cacheable = dtype in LOW and value.is_leaf and value.requires_grad and torch.is_grad_enabled()
        if cacheable and id(value) in self.weight_cache:
            return self.weight_cache[id(value)]
        cast = value.to(dtype)
        if cacheable:
            self.weight_cache[id(value)] = cast
        return cast

    def _cast_all(self, tree, dtype):
        return pytree.tree_map(lambda v: self._cast(v, dtype), tree)

    def _attention(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
        if self.dtype is not None:
            q, k, v = (self._cast(t, self.dtype) for t in (q, k, v))
        if q.dtype in LOW and attn_mask is None and q.shape[-1] <= 256:
            return torch.ops.aten._scaled_dot_product_flash_attention(
                q, k, v, dropout_p, is_causal, False, scale=scale)[0]
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
        if attn_mask is not None and attn_mask.dtype != q.dtype:  # bool masks become additive biases, as in SDPA
            attn_mask = attn_mask.to(q.dtype)
        return torch.ops.aten._scaled_dot_product_efficient_attention(
            q, k, v, attn_mask, needs_grad, dropout_p, is_causal, scale=scale)[0]
