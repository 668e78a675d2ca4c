"""Measure real DINO steps on a GPU for setups NOT in the calibration CSV.

Self-contained: needs torch and timm only (not lightly,
pydantic or dino_guard). lightly's DINOProjectionHead and DINOLoss are
replicated below line for line where memory is concerned (weight-normed last
layer, stacked softmax / log-softmax and einsum). Protocol as in
../shared/calibration/README.md: fresh peak stats per setup, inputs on the
GPU, autocast for bf16, AdamW, set_to_none, EMA teacher, 3 steps.

    python bench/estimate/gpu_validate.py > gpu_results.json      # on the GPU machine (~2-4 min on an H100)
    .venv/bin/python bench/estimate/bench.py --gpu-results gpu_results.json   # here: compare both methods
"""

from __future__ import annotations

import copy
import gc
import json
import sys

import timm
import torch
import torch.nn.functional as F
from torch import nn

SETUPS = [  # keys follow dino_guard.memory.spec.MemorySpec
    dict(backbone="convnext_tiny", batch_size=64, precision="bf16"),
    dict(backbone="convnext_small", batch_size=32, precision="fp32", n_local_views=8),
    dict(backbone="convnext_base", batch_size=48, precision="bf16", global_crop_size=192, local_crop_size=80,
         output_dim=16384),
    dict(backbone="efficientnet_b0", batch_size=128, precision="bf16"),
    dict(backbone="efficientnet_b3", batch_size=48, precision="fp32", global_crop_size=256, local_crop_size=112,
         head_batch_norm=True),
    dict(backbone="regnety_016", batch_size=128, precision="bf16", n_local_views=10),
    dict(backbone="regnety_032", batch_size=64, precision="fp32", output_dim=4096, head_hidden_dim=4096),
    dict(backbone="resnet101", batch_size=96, precision="bf16", head_batch_norm=True),
    dict(backbone="mobilenetv3_large_100", batch_size=256, precision="bf16"),
    dict(backbone="swin_tiny_patch4_window7_224", batch_size=64, precision="bf16"),
    dict(backbone="deit_small_patch16_224", batch_size=96, precision="bf16", n_local_views=8, output_dim=32768),
    dict(backbone="vit_small_patch14_dinov2", batch_size=64, precision="bf16", local_crop_size=98),
    dict(backbone="vit_base_patch8_224", batch_size=8, precision="bf16"),
    dict(backbone="vit_large_patch16_224", batch_size=160, precision="bf16", n_local_views=10),
    dict(backbone="vit_small_patch16_224", batch_size=256, precision="bf16", global_crop_size=160, local_crop_size=64),
    dict(backbone="vit_base_patch16_224", batch_size=150, precision="fp32", n_local_views=10),  # near the H100 limit
]
DEFAULTS = dict(n_global_views=2, global_crop_size=224, n_local_views=6, local_crop_size=96, head_hidden_dim=2048,
                head_bottleneck_dim=256, output_dim=65536, head_batch_norm=False)


class DINOHead(nn.Module):
    """lightly.models.modules.DINOProjectionHead (freeze_last_layer, norm_last_layer=True)."""

    def __init__(self, input_dim, hidden_dim, bottleneck_dim, output_dim, batch_norm):
        super().__init__()
        bias = not batch_norm
        layers = [nn.Linear(input_dim, hidden_dim, bias=bias)] + ([nn.BatchNorm1d(hidden_dim)] if batch_norm else [])
        layers += ([nn.GELU(), nn.Linear(hidden_dim, hidden_dim, bias=bias)]
                   + ([nn.BatchNorm1d(hidden_dim)] if batch_norm else []))
        layers += [nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim)]
        self.layers = nn.Sequential(*layers)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, output_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False  # lightly's norm_last_layer=True

    def forward(self, x):
        return self.last_layer(F.normalize(self.layers(x), dim=-1, p=2))


class DINOLoss(nn.Module):
    """lightly.loss.DINOLoss.forward, memory-wise."""

    def __init__(self, output_dim):
        super().__init__()
        self.register_buffer("center", torch.zeros(1, 1, output_dim))

    def forward(self, teacher_out, student_out):
        t_stack = torch.stack(teacher_out)
        t_out = F.softmax((t_stack - self.center) / torch.tensor(0.04), dim=-1)
        s_stack = torch.stack(student_out)  # a local in lightly: alive until the loss returns
        s_out = F.log_softmax(s_stack / 0.1, dim=-1)
        loss = -torch.einsum("tbd,sbd->ts", t_out, s_out)
        loss.fill_diagonal_(0)
        n_terms = loss.numel() - loss.diagonal().numel()
        loss = loss.sum() / (n_terms * t_stack.shape[1])
        with torch.no_grad():
            self.center.data = self.center * 0.9 + t_stack.mean(dim=(0, 1), keepdim=True) * 0.1
        return loss


def backbone(name):
    try:  # ViTs take other crop sizes only with dynamic_img_size; other models refuse the keyword
        model = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True)
    except TypeError:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    return model, getattr(model, "head_hidden_size", None) or model.num_features


def measure(s, dev="cuda"):
    student, width = backbone(s["backbone"])
    student = student.to(dev)
    teacher = copy.deepcopy(student).requires_grad_(False)
    head_args = (width, s["head_hidden_dim"], s["head_bottleneck_dim"], s["output_dim"], s["head_batch_norm"])
    s_head = DINOHead(*head_args).to(dev)
    t_head = DINOHead(*head_args).to(dev)
    t_head.load_state_dict(s_head.state_dict())
    t_head.requires_grad_(False)
    criterion = DINOLoss(s["output_dim"]).to(dev)
    opt = torch.optim.AdamW([*student.parameters(), *s_head.parameters()], lr=1e-4, fused=True)
    b, g, local = s["batch_size"], s["global_crop_size"], s["local_crop_size"]
    views = [(torch.randn(s["n_global_views"] * b, 3, g, g, device=dev), s["n_global_views"])]
    if s["n_local_views"]:
        views.append((torch.randn(s["n_local_views"] * b, 3, local, local, device=dev), s["n_local_views"]))
    dtype = torch.bfloat16 if s["precision"] == "bf16" else None
    for _ in range(3):
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            with torch.no_grad():
                t_out = t_head(teacher(views[0][0])).chunk(views[0][1])
            s_out = [o for x, n in views for o in s_head(student(x)).chunk(n)]
            loss = criterion([t.float() for t in t_out], [o.float() for o in s_out])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for module, ema in ((student, teacher), (s_head, t_head)):
                ema_params = list(ema.parameters())
                torch._foreach_mul_(ema_params, 0.996)
                torch._foreach_add_(ema_params, list(module.parameters()), alpha=0.004)
        del loss, t_out, s_out
    if dev == "cuda":
        torch.cuda.synchronize()


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"# {torch.cuda.get_device_name()} torch {torch.__version__} timm {timm.__version__}", file=sys.stderr)
    results = []
    for setup in SETUPS:
        s = {**DEFAULTS, **setup}
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        row = {"spec": setup, "gpu": torch.cuda.get_device_name(), "total_bytes": torch.cuda.mem_get_info()[1]}
        try:
            measure(s)
            row.update(status="ok", peak_allocated_bytes=torch.cuda.max_memory_allocated(),
                       peak_reserved_bytes=torch.cuda.max_memory_reserved())
        except torch.cuda.OutOfMemoryError:
            row.update(status="oom", peak_allocated_bytes=None)
        except Exception as exc:  # report and go on: one odd model must not lose the others
            row.update(status="error", error=f"{type(exc).__name__}: {exc}"[:300])
        print(json.dumps(row), file=sys.stderr, flush=True)
        results.append(row)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
