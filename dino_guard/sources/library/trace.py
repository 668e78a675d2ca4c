"""What the DINO library records while the evaluator walks a script: for the partial setup and the script rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dino_guard.sources.interp.trace import Trace
from dino_guard.sources.interp.values import Obj, Position


@dataclass
class MomentumCall:
    """update_momentum(model, model_ema, m)."""

    texts: tuple  # the two first arguments as written
    objs: tuple
    m: Any
    pos: Position
    scope: Any = None  # the script class whose method calls it
    evaluation: str | None = None  # where it runs when that is not training: "validation_step", ...
    evaluation_pos: Position | None = None  # the evaluation hook's line that leads to it


@dataclass
class LossCall:
    loss: Obj
    teacher: Any
    student: Any
    epoch: bool  # epoch= given (and no teacher_temp=): the teacher-temperature warmup runs
    pos: Position
    texts: tuple = ("", "")  # the teacher_out and student_out arguments as written
    scope: Any = None
    evaluation: str | None = None
    evaluation_pos: Position | None = None
    arg_positions: tuple = ()  # positions of the teacher_out and student_out arguments


@dataclass
class IBOTCall:
    """IBOTPatchLoss(teacher_out, student_out, mask, teacher_temp=None): which modules made each side."""

    loss: Obj
    teacher: Any
    student: Any
    pos: Position
    texts: tuple = ("", "")


@dataclass
class KoLeoCall:
    """KoLeoLoss(x): what the regulariser is applied to."""

    value: Any
    pos: Position
    text: str = ""


@dataclass
class OptimizerCall:
    owners: list | None  # objects whose parameters it gets; None: unknown
    pos: Position


@dataclass
class DinoTrace(Trace):
    momentum_calls: list = field(default_factory=list)
    loss_calls: list = field(default_factory=list)
    ibot_calls: list = field(default_factory=list)  # IBOTCall: DINOv2's masked-patch loss
    koleo_calls: list = field(default_factory=list)  # KoLeoCall
    optimizers: list = field(default_factory=list)
    frozen: set = field(default_factory=set)  # ids of objects whose requires_grad was turned off
    maybe_frozen: set = field(default_factory=set)  # ids handed to calls dino-guard cannot follow
    calls: list = field(default_factory=list)  # (obj, under_no_grad) for every module forward
    last_layer_calls: list = field(default_factory=list)  # (text, obj, pos) of cancel_last_layer_gradients
    lightly_refs: dict = field(default_factory=dict)  # qualified name -> first position used
    train_loaders: list = field(default_factory=list)  # DataLoaders iterated or handed to trainer.fit
    epochs: list = field(default_factory=list)  # (value, pos) from range(N) around a loader loop, max_epochs
    precisions: list = field(default_factory=list)  # (precision, pos) from autocast / GradScaler / Trainer
    grad_scaler: Position | None = None
    detach_seen: bool = False  # some tensor is detached: gradient flow cannot be judged
    imported: set = field(default_factory=set)  # top-level packages the script imports
    distributed: bool = False  # torch.distributed / DDP / DistributedSampler seen
    training_loop: bool = False  # a loop over a DataLoader or a Lightning fit was seen
    head_inputs: list = field(default_factory=list)  # (head Obj, the value fed to it, position)
    schedules: list = field(default_factory=list)  # cosine_schedule(...) Objs
    ema_by_hand: bool = False  # zip(student.parameters(), teacher.parameters()), .lerp_/.mul_: an EMA without lightly
    image_folders: list = field(default_factory=list)  # (root path, position) of torchvision ImageFolder calls
