"""Pydantic models of a DINO setup file: shape only.

Types, ranges and unknown keys live here; meaning across fields (does the
head fit the backbone?) lives in dino_guard.rules, so that one mistake never
hides another. Defaults are lightly's where lightly has one
(DINOTransform, DINOProjectionHead, DINOLoss) and facebookresearch/dino's
main_dino.py otherwise.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field's annotation
# from its string (a ForwardRef compiled per field), about a sixth of the time `check` spends importing.
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

INT64_MAX = 2**63 - 1  # torch, numpy and every C API below the trainer take 64-bit integers

# Every integer field is an Int: its upper bound is a constraint pydantic-core checks, where a Python
# validator on every field cost `check` a wrapper per field at import. Each field also has its own lower
# bound (gt=0, ge=0, ge=-1; tests/schemas/test_setup.py holds every integer field to both bounds), so
# a value outside 64 bits is always refused; the setup loader words the bound as "must fit in 64 bits".
Int = Annotated[int, Field(le=INT64_MAX)]


class Section(BaseModel):
    """Every section refuses unknown keys: a typo must not pass silently.

    Numbers must be finite (`.inf`, `1e400`) and integers fit in 64 bits (`Int`):
    the trainer hands them to torch, and the checks do arithmetic with them.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


def _ordered_scale(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not (0.0 < low <= 1.0 and 0.0 < high <= 1.0):
        raise ValueError(f"crop scales must lie in (0, 1], got [{low}, {high}]")
    if low > high:
        raise ValueError(f"crop scale must be [min, max] with min <= max, got [{low}, {high}]")
    return value


class Data(Section):
    """Where the images come from: a folder, or the built-in synthetic set."""

    path: str | None = Field(None, description=(
        "Folder of images, searched recursively; class subfolders are kNN labels."))
    synthetic: Literal["shapes"] | None = Field(None, description="Built-in generated data set instead of a folder.")
    size: Int = Field(2000, gt=0, description="Number of synthetic images.")
    dataset_size: Int | None = Field(None, gt=0, description="Number of training images, if known (used by checks).")
    num_workers: Int = Field(8, ge=0, description="DataLoader worker processes.")


class Transform(Section):
    """lightly's DINOTransform arguments, plus where augmentation runs."""

    name: Literal["dino", "none"] = Field("dino", description="none: the data set has no DINO transform (an error).")
    backend: Literal["cpu", "device"] = Field("cpu", description=(
        "cpu: lightly's DINOTransform in DataLoader workers; device: batched on the training device."))
    decode: Literal["worker", "device"] = Field("worker", description=(
        "Where JPEGs are decoded with backend: device. worker: PIL in the DataLoader workers (decode and "
        "resize); device: workers read the file bytes, torchvision.io.decode_jpeg decodes the batch on the "
        "training device (8-bit RGB and grayscale JPEGs up to 24 MP, in chunks of 32 MP that the memory "
        "estimate counts; other files are still decoded in the workers). "
        "Ignored with backend: cpu."))
    global_crop_size: Int = Field(224, gt=0, description="Side of the 2 global crops, px.")
    global_crop_scale: tuple[float, float] = Field((0.4, 1.0), description=(
        "[min, max] fraction of the image a global crop covers."))
    local_crop_size: Int = Field(96, gt=0, description="Side of the local crops, px.")
    local_crop_scale: tuple[float, float] = Field((0.05, 0.4), description=(
        "[min, max] fraction of the image a local crop covers."))
    n_local_views: Int = Field(6, ge=0, description="Number of local crops per image.")
    hf_prob: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a horizontal flip.")
    vf_prob: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a vertical flip.")
    rr_prob: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a random 90-degree rotation.")
    cj_prob: float = Field(0.8, ge=0.0, le=1.0, description="Probability of colour jitter.")
    cj_strength: float = Field(0.5, ge=0.0, description="Scales the four colour-jitter strengths below.")
    cj_bright: float = Field(0.8, ge=0.0, description="Brightness jitter (times cj_strength).")
    cj_contrast: float = Field(0.8, ge=0.0, description="Contrast jitter (times cj_strength).")
    cj_sat: float = Field(0.4, ge=0.0, description="Saturation jitter (times cj_strength).")
    cj_hue: float = Field(0.2, ge=0.0, le=0.5, description="Hue jitter (times cj_strength).")
    random_gray_scale: float = Field(0.2, ge=0.0, le=1.0, description="Probability of converting to grayscale.")
    gaussian_blur: tuple[float, float, float] = Field((1.0, 0.1, 0.5), description=(
        "Blur probability of global view 1, global view 2, local views."))
    sigmas: tuple[float, float] = Field((0.1, 2.0), description="[min, max] sigma of the Gaussian blur.")
    solarization_prob: float = Field(0.2, ge=0.0, le=1.0, description="Probability of solarizing global view 2.")

    _scales = field_validator("global_crop_scale", "local_crop_scale")(_ordered_scale)

    @field_validator("gaussian_blur")
    @classmethod
    def _blur_probabilities(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(not 0.0 <= p <= 1.0 for p in value):
            raise ValueError(f"gaussian_blur holds three probabilities in [0, 1], got {list(value)}")
        return value

    @field_validator("sigmas")
    @classmethod
    def _sigmas_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1]:
            raise ValueError(f"sigmas must be [min, max] with 0 < min <= max, got {list(value)}")
        return value


class Backbone(Section):
    """The backbone network (timm or torchvision)."""

    name: str = Field(description="A timm model name (a pretrained tag like .dino is allowed) or torchvision/<name>.")
    pretrained: bool = Field(False, description="Load timm's pretrained weights (needs them in the local cache).")
    dynamic_img_size: bool | None = Field(None, description="timm ViTs: accept input sizes other than img_size.")
    feature_dim: Int | None = Field(None, gt=0, description=(
        "Pooled feature width, for backbones dino-guard does not know."))
    patch_size: Int | None = Field(None, gt=0, description=(
        "Patch size, for ViT-like backbones dino-guard does not know."))
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0, description="Stochastic depth of the student (timm keyword).")


class Head(Section):
    """lightly's DINOProjectionHead arguments."""

    input_dim: Int | None = Field(None, gt=0, description="Defaults to the backbone's feature width.")
    hidden_dim: Int = Field(2048, gt=0, description="Width of the head's hidden layers.")
    bottleneck_dim: Int = Field(256, gt=0, description="Width before the weight-normalised last layer.")
    output_dim: Int = Field(65536, gt=0, description="Number of prototypes (DINO's K).")
    batch_norm: bool = Field(False, description="Batch norm in the head (the ResNet recipe).")
    freeze_last_layer: Int = Field(-1, ge=-1, description=(
        "Epochs during which the last layer's gradients are cancelled; -1 never."))
    norm_last_layer: bool = Field(True, description=(
        "Fix the last layer's weight norm (more stable; DINO ViT-S/16 uses false)."))


class Model(Section):
    backbone: Backbone
    head: Head = Field(default_factory=Head)
    init: str | None = Field(None, description=(
        "Start the student and teacher backbones from these weights (a warm start): a dino-guard export "
        "(backbone.pt, or its run folder), a dino-guard, lightly or Lightning checkpoint, a timm state dict, or a "
        "Meta DINO/DINOv2/DINOv3 checkpoint. Loaded strictly; the DINO heads start fresh. Relative paths: from the "
        "working directory, else next to the setup file."))
    init_part: Literal["teacher", "student"] | None = Field(None, description=(
        "Which part of a checkpoint that holds both to start from; default: the teacher (what DINO evaluates)."))


class IBOTHead(Section):
    """A separate iBOT head (lightly's DINOv2ProjectionHead) for the masked patch tokens."""

    hidden_dim: Int = Field(2048, gt=0, description="Width of the iBOT head's hidden layers.")
    bottleneck_dim: Int = Field(256, gt=0, description="Width before the iBOT head's last layer.")
    output_dim: Int = Field(65536, gt=0, description="Number of iBOT prototypes.")


class IBOT(Section):
    """DINOv2's iBOT masked-patch loss (lightly's IBOTPatchLoss, random_block_mask); method: dinov2 only."""

    weight: float = Field(1.0, ge=0.0, description=(
        "Weight of the iBOT term in the total loss (Meta: ibot_loss_weight 1.0)."))
    separate_head: bool = Field(False, description=(
        "Patch tokens go through their own head (head:) instead of the DINO head."))
    head: IBOTHead = Field(default_factory=IBOTHead, description=(
        "The separate iBOT head's widths (used with separate_head: true)."))
    output_dim: Int | None = Field(None, gt=0, description=(
        "IBOTPatchLoss output_dim; defaults to the width of the head the patch tokens go through."))
    teacher_temp: float = Field(0.07, gt=0.0, description="IBOTPatchLoss teacher temperature.")
    student_temp: float = Field(0.1, gt=0.0, description="IBOTPatchLoss student temperature.")
    center_momentum: float = Field(0.9, ge=0.0, le=1.0, description="EMA momentum of the iBOT center.")
    mask_ratio_min_max: tuple[float, float] = Field((0.1, 0.5), description=(
        "[min, max] share of a global crop's patches masked (Meta: 0.1, 0.5)."))
    mask_sample_probability: float = Field(0.5, description="Share of global crops that are masked at all (Meta: 0.5).")


class KoLeo(Section):
    """DINOv2's KoLeo regulariser on the student's class tokens (lightly's KoLeoLoss); method: dinov2 only."""

    weight: float = Field(0.1, ge=0.0, description=(
        "Weight of the KoLeo term (Meta: koleo_loss_weight 0.1); 0 turns it off."))


class Loss(Section):
    """lightly's DINOLoss arguments."""

    output_dim: Int | None = Field(None, gt=0, description="Defaults to model.head.output_dim.")
    warmup_teacher_temp: float = Field(0.04, gt=0.0, description="Teacher temperature at the start of its warmup.")
    teacher_temp: float = Field(0.04, gt=0.0, description="Teacher temperature after the warmup (at most 0.07).")
    warmup_teacher_temp_epochs: Int = Field(30, ge=0, description="Epochs of linear teacher-temperature warmup.")
    student_temp: float = Field(0.1, gt=0.0, description="Student temperature.")
    center_momentum: float = Field(0.9, ge=0.0, le=1.0, description="EMA momentum of the teacher-output center.")


class Optimizer(Section):
    """Optimizer and its schedules (cosine, per optimizer step)."""

    name: Literal["adamw", "adam", "sgd"] = Field("adamw", description="AdamW for ViTs; SGD is the ResNet recipe.")
    lr: float = Field(0.0005, gt=0.0, description="Base learning rate for an effective batch of 256 (scaled linearly).")
    warm_start_lr_factor: float | None = Field(None, gt=0.0, description=(
        "With model.init the lr used is multiplied by this. Default 0.1: a warm start continues a finished run, "
        "and DINO's cosine schedule (main_dino.py) is below 10% of its peak over a run's last fifth."))
    min_lr: float = Field(1e-6, ge=0.0, description="Learning rate at the end of the cosine decay.")
    weight_decay: float = Field(0.04, ge=0.0, description="Weight decay at the start (cosine schedule).")
    weight_decay_end: float = Field(0.4, ge=0.0, description="Weight decay at the end.")
    warmup_epochs: float = Field(10, ge=0.0, description="Epochs of linear learning-rate warmup.")
    clip_grad: float | None = Field(3.0, ge=0.0, description="Max gradient norm; 0 or null disables clipping.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    layer_decay: float | None = Field(None, gt=0.0, le=1.0, description=(
        "Layer-wise lr decay: block i of n trains at lr x layer_decay^(n - i). Default: 0.9 for method: dinov2 "
        "(Meta's layerwise_decay), 1 (none) for dino."))
    patch_embed_lr_mult: float | None = Field(None, gt=0.0, description=(
        "lr multiplier of the patch embedding. Default: 0.2 for method: dinov2 (Meta), 1 for dino."))


class TeacherMomentum(Section):
    """EMA momentum of the teacher."""

    start: float = Field(0.996, ge=0.0, le=1.0, description="Teacher EMA momentum at the start (cosine to end).")
    end: float = Field(1.0, ge=0.0, le=1.0, description="Teacher EMA momentum at the end.")
    warm_start: float | None = Field(None, ge=0.0, le=1.0, description=(
        "With model.init the momentum never goes below this (start and end are raised to it). Default 0.999: "
        "the teacher of a finished run, whose momentum DINO's schedule (0.996 -> 1) keeps at 0.999 or above "
        "over the last third."))


class Train(Section):
    """The run: length, batch, precision, devices, output."""

    epochs: Int = Field(100, gt=0, description="Passes over the data set.")
    batch_size: Int = Field(64, gt=0, description="Per device.")
    accumulate_grad_batches: Int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("bf16", description=(
        "bf16/fp16: autocast mixed precision (fp16 with a GradScaler)."))
    compile: bool = Field(False, description="Wrap the models in torch.compile.")
    devices: Int = Field(1, gt=0, description=(
        "Processes (GPUs) per node; dino-guard train starts them itself (torch.distributed.run)."))
    num_nodes: Int = Field(1, gt=0, description=(
        "Nodes; run dino-guard train on each with --nnodes, --node-rank and --rdzv-endpoint."))
    seed: Int = Field(0, ge=0, description="Seed of every random number generator (0 to 2**63 - 1).")
    output_dir: str = Field("runs/dino", description="Where metrics, checkpoints and plots go.")
    max_steps: Int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
    checkpoint_every_epochs: Int = Field(0, ge=0, description=(
        "Keep an extra checkpoint every N epochs; 0 keeps only last.pt."))
    log_every_steps: Int = Field(1, gt=0, description=(
        "Write a metrics.jsonl row every N optimizer steps (and the last step's and kNN rows); the loss checks "
        "still see every step."))
    checkpoint_every_steps: Int = Field(0, ge=0, description=(
        "Also write checkpoints/last.pt every N optimizer steps; 0: at epoch ends only."))
    freeze_backbone_steps: Int | None = Field(None, ge=0, description=(
        "Optimizer steps at the start in which only the heads train (the backbone gets no update). Default: "
        "the lr warmup's steps with model.init (heads first: a fresh head's early gradients distort "
        "pretrained features; Kumar et al. 2022, LP-FT), 0 otherwise."))


MAX_GPU_MEMORY_GB = 100_000.0  # 100 TB: far above any one device; keeps byte counts exact


class Hardware(Section):
    """The GPU the run is meant for (memory checks)."""

    gpu: str | None = Field(None, description="A GPU name from the catalog, e.g. H100-80GB.")
    gpu_memory_gb: float | None = Field(None, gt=0.0, le=MAX_GPU_MEMORY_GB, description=(
        "Memory of a GPU not in the catalog."))


class Monitor(Section):
    """Loss-trend checks of the trainer (DG5xx)."""

    enabled: bool = Field(True, description="Run the loss-trend checks.")
    collapse_window: Int = Field(20, gt=0, description="Optimizer steps the collapse checks look at.")
    uniform_collapse_tolerance: float = Field(0.01, gt=0.0, description=(
        "Loss within this fraction of ln(output_dim) counts as uniform collapse."))
    min_teacher_std: float = Field(0.05, ge=0.0, description=(
        "Std of l2-normalized centered teacher outputs below this fraction of 1/sqrt(output_dim) (the isotropic "
        "value) is dimensional collapse when it fell there from above it, or stays there with the loss below 5% of "
        "ln(output_dim) (every image on one prototype); a std that starts below it and grows (LayerScale) is not."))
    divergence_factor: float = Field(1.5, gt=1.0, description=(
        "Smoothed loss - teacher entropy (the student's KL to the teacher) above factor x its minimum, and above it "
        "by divergence_margin, is divergence."))
    divergence_margin: float = Field(0.25, gt=0.0, description=(
        "The rise divergence needs besides the factor, as a fraction of ln(output_dim)."))
    divergence_window: Int = Field(20, gt=0, description=(
        "Optimizer steps over which the divergence check averages loss - teacher entropy."))
    patience: Int = Field(20, gt=0, description="Steps a divergence may last before the run is stopped.")
    grace_steps: Int = Field(10, ge=0, description="Steps at the start the trend checks ignore.")
    min_progress: float = Field(0.01, ge=0.0, lt=1.0, description=(
        "After warmup the mean loss over the last collapse_window steps must be below the mean of the first "
        "collapse_window steps of the run by at least this fraction, else a no-progress warning."))
    knn_drop_margin: float = Field(2.0, ge=0.0, description=(
        "With model.init: kNN top-1 more than this many points below the kNN of the initial weights, and more "
        "than twice the sampling error of that drop (paired over the same query images), counts as harm (DG513). "
        "The error is measured at each evaluation: on a few hundred queries it is 2-4 points, so there the "
        "margin alone would stop unharmed runs by chance."))
    knn_drop_patience: Int = Field(2, gt=0, description=(
        "Consecutive kNN evaluations counted as harm (below the start by more than knn_drop_margin and twice "
        "the drop's sampling error) that stop the run (DG513)."))


class Eval(Section):
    """kNN evaluation of the teacher backbone."""

    knn_k: Int = Field(20, gt=0, description="Neighbours of the kNN classifier.")
    knn_temperature: float = Field(0.07, gt=0.0, description="Temperature of the weighted kNN vote.")
    knn_every_epochs: Int = Field(0, ge=0, description="kNN evaluation every N epochs; 0: only at the end.")
    every_steps: Int | None = Field(None, ge=0, description=(
        "kNN evaluation every N optimizer steps (plotted in loss.png; the best state is kept as "
        "checkpoints/best.pt). Default: 10 evaluations along a run with model.init (the do-no-harm check, "
        "DG513, needs them), 0 (none besides knn_every_epochs and the end) otherwise."))
    knn: bool = Field(True, description=(
        "Evaluate the teacher backbone with kNN (needs labelled images); false turns it off."))
    path: str | None = Field(None, description=(
        "Labelled folder (one subfolder per class) of kNN query images, never trained on. When data.path has the "
        "same class subfolders its images are the kNN bank, otherwise half of this folder is."))
    holdout_fraction: float | None = Field(None, ge=0.0, lt=1.0, description=(
        "Share of a labelled training folder held out of training as kNN queries. Default: 0 for a folder "
        "(training uses every image; give eval.path for kNN), 0.2 for the built-in synthetic set."))
    knn_max_images: Int = Field(10000, gt=0, description=(
        "At most this many images (a seeded random subset) each in the kNN bank and in the queries; they are read "
        "again at every evaluation, never held in memory."))


class Setup(Section):
    """A whole DINO training setup."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, title="dino-guard setup")

    method: Literal["dino", "dinov2"] = Field("dino", description=(
        "dino: DINO (DINOProjectionHead, DINOLoss, lr linear per 256 images). dinov2: DINO's class-token loss plus "
        "iBOT (ibot:) and KoLeo (koleo:), DINOv2ProjectionHead, lr by the square root of the batch over 1024."))
    data: Data = Field(default_factory=Data)
    transform: Transform | None = None
    model: Model
    loss: Loss = Field(default_factory=Loss)
    ibot: IBOT = Field(default_factory=IBOT)
    koleo: KoLeo = Field(default_factory=KoLeo)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    teacher_momentum: TeacherMomentum = Field(default_factory=TeacherMomentum)
    train: Train = Field(default_factory=Train)
    hardware: Hardware = Field(default_factory=Hardware)
    monitor: Monitor = Field(default_factory=Monitor)
    eval: Eval = Field(default_factory=Eval)

    @property
    def has_dino_transform(self) -> bool:
        return self.transform is not None and self.transform.name != "none"

    @property
    def loss_output_dim(self) -> int:
        return self.loss.output_dim or self.model.head.output_dim
