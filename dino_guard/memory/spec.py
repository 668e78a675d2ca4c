"""What the memory estimators need to know about one DINO training step.

A MemorySpec is built from a Setup (or by hand, e.g. from a row of the
calibration CSV). It imports nothing heavy: the analytic estimator and the
`check` path use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dino_guard import backbones

PRECISIONS = ("fp32", "bf16", "fp16")

# `transform.decode: device` (dino_guard.trainer.device_aug.jpeg) decodes a batch's JPEGs on the device
# in chunks of at most DECODE_CHUNK_PIXELS, counting each image as its own pixels plus the square it is
# resized to; a JPEG above DECODE_MAX_PIXELS (a 24 MP photograph) is decoded by a worker instead, in PIL's
# draft mode. Issue 15: whole batches of 8000x8000 JPEGs decoded at once took tens of GB.
DECODE_CHUNK_PIXELS = 32 * 2**20
DECODE_MAX_PIXELS = 24 * 2**20


def device_decode_bytes() -> int:
    """Peak device memory of decoding one chunk: its uint8 pixels (3 B/px), their float32 copy and
    resized float32 squares (12 B/px, within the chunk's count), the uint8 squares (3 B/px)."""
    return 18 * DECODE_CHUNK_PIXELS


@dataclass(frozen=True)
class MemorySpec:
    backbone: str
    batch_size: int  # per device
    precision: str = "bf16"
    n_global_views: int = 2
    global_crop_size: int = 224
    n_local_views: int = 6
    local_crop_size: int = 96
    feature_dim: int | None = None  # None: the backbone's own width
    head_hidden_dim: int = 2048
    head_bottleneck_dim: int = 256
    output_dim: int = 65536
    head_batch_norm: bool = False
    optimizer: str = "adamw"  # adamw | adam | sgd
    fused_optimizer: bool = True  # fused AdamW (no foreach temporaries); the trainer's choice
    forward_style: str = "batched"  # batched: one pass per crop size; per_view: one per view
    ddp: bool = False  # several devices: DistributedDataParallel keeps flat gradient buckets
    dynamic_img_size: bool = True
    drop_path_rate: float = 0.0
    device_decode: bool = False  # transform.decode: device: JPEGs decoded on the device, chunk by chunk
    # DINOv2 (method: dinov2): DINOv2ProjectionHead, iBOT on the masked patch tokens of the global crops, KoLeo
    method: str = "dino"
    ibot_separate_head: bool = False
    ibot_hidden_dim: int = 2048
    ibot_bottleneck_dim: int = 256
    ibot_output_dim: int = 65536
    masked_share: float = 0.15  # expected share of global-crop patch tokens masked: probability x mean ratio
    koleo: bool = True

    def __post_init__(self):
        if self.batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def with_batch(self, batch_size: int) -> MemorySpec:
        return replace(self, batch_size=batch_size)

    @property
    def views(self) -> list[tuple[int, int]]:
        """(number of views, crop size) per crop size, skipping empty groups."""
        groups = [(self.n_global_views, self.global_crop_size), (self.n_local_views, self.local_crop_size)]
        return [(n, size) for n, size in groups if n > 0]

    def masked_tokens(self, patches: int) -> int:
        """Masked patch tokens per step (every global crop of the batch, `patches` each): the rows the
        iBOT head and loss see. random_block_mask masks `probability` of the crops, each a share drawn
        between min and max; the estimate takes the expected count."""
        return max(1, round(self.n_global_views * self.batch_size * patches * self.masked_share))

    @property
    def ibot_head(self) -> tuple[int, int, int]:
        """(hidden, bottleneck, output) of the head the masked tokens go through."""
        if self.ibot_separate_head:
            return self.ibot_hidden_dim, self.ibot_bottleneck_dim, self.ibot_output_dim
        return self.head_hidden_dim, self.head_bottleneck_dim, self.output_dim

    @property
    def optimizer_states(self) -> int:
        """Tensors of optimizer state per parameter (AdamW: exp_avg, exp_avg_sq)."""
        return {"adamw": 2, "adam": 2, "sgd": 1}[self.optimizer]


def spec_from_setup(setup, batch_size: int | None = None) -> MemorySpec:
    """The per-device training step a Setup describes (duck-typed: no pydantic import)."""
    model, transform, train = setup.model, setup.transform, setup.train
    backbone = model.backbone
    local_views = transform.n_local_views if transform is not None else 0
    return MemorySpec(
        backbone=backbone.name,
        batch_size=batch_size if batch_size is not None else train.batch_size,
        precision=train.precision,
        global_crop_size=transform.global_crop_size if transform is not None else 224,
        n_local_views=local_views,
        local_crop_size=transform.local_crop_size if transform is not None else 96,
        feature_dim=model.head.input_dim or backbones.resolve(backbone).width,
        head_hidden_dim=model.head.hidden_dim,
        head_bottleneck_dim=model.head.bottleneck_dim,
        output_dim=model.head.output_dim,
        head_batch_norm=model.head.batch_norm,
        optimizer=setup.optimizer.name,
        dynamic_img_size=backbone.dynamic_img_size is not False,
        drop_path_rate=backbone.drop_path_rate,
        ddp=train.devices * train.num_nodes > 1,
        device_decode=transform is not None and transform.backend == "device" and transform.decode == "device",
        **_dinov2_fields(setup),
    )


def _dinov2_fields(setup) -> dict:
    """The DINOv2 part of the step; nothing for DINO (the spec's defaults are unused there)."""
    if getattr(setup, "method", "dino") != "dinov2":
        return {}
    ibot = setup.ibot
    low, high = ibot.mask_ratio_min_max
    return {"method": "dinov2", "ibot_separate_head": ibot.separate_head, "ibot_hidden_dim": ibot.head.hidden_dim,
            "ibot_bottleneck_dim": ibot.head.bottleneck_dim, "ibot_output_dim": ibot.head.output_dim,
            "masked_share": min(max(ibot.mask_sample_probability, 0.0), 1.0) * min(max((low + high) / 2, 0.0), 1.0),
            "koleo": setup.koleo.weight > 0}
