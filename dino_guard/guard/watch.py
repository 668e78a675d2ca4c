"""DinoGuard: dino-guard's checks inside the user's own DINO training loop.

    guard = DinoGuard.attach(criterion, student=model, dataloader=dataloader, gpu="A100-80GB")
    for views, _, _ in dataloader:       # the user's loop, unchanged
        loss = criterion(teacher_out, student_out, epoch=epoch)  # raises DinoGuardStop on a DG5xx stop
        ...
    guard.close()

`attach` runs the pre-flight on the live objects (preflight.py) and raises
DinoGuardStop on an error finding. Then two hooks on the user's lightly
DINOLoss see every call: the teacher outputs going in (for the teacher's std
and entropy, trainer/teacher_stats.py) and the loss coming out, at no extra
forward. The numbers stay on the device and are read one step late, like
`dino-guard train` reads them (trainer/loop.py: launch_step/record_step), and
go to the same Monitor (trainer/monitor.py) with the setup's `monitor:`
thresholds. Without an optimizer step to hook, each DINOLoss call is one
step; the Lightning callback (lightning.py) ends steps at its optimizer steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import torch

from dino_guard.check.report import finding_lines
from dino_guard.findings import Finding, Severity
from dino_guard.guard.preflight import Located, RunFacts, find_parts, live_finding, preflight
from dino_guard.guard.snapshot import LastFinite
from dino_guard.trainer import runfolder
from dino_guard.trainer.late import LateStep, OneStepLate, to_host_later
from dino_guard.trainer.monitor import Monitor
from dino_guard.trainer.teacher_stats import masked_image_share, teacher_stats


class NotADinoLoss(TypeError):
    """DinoGuard.attach was given something other than a lightly DINOLoss; the message says what."""


def require_dino_loss(criterion) -> None:
    from lightly.loss import DINOLoss

    if not isinstance(criterion, DINOLoss):
        kind = type(criterion)
        raise NotADinoLoss(f"DinoGuard.attach(criterion): got a {kind.__module__}.{kind.__qualname__}, not a lightly "
                           "DINOLoss (lightly.loss.DINOLoss or a subclass); attach the DINO loss your loop calls")


def loss_tensor(output) -> torch.Tensor | None:
    """The loss in what a DINOLoss (or a subclass) returned: the tensor, or the first tensor of
    (loss, logs); None when there is none to read (the user's call is left alone)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    elif isinstance(output, dict):
        output = output.get("loss")
    return output if isinstance(output, torch.Tensor) else None


class DinoGuardStop(RuntimeError):
    """A check stopped the run; `.finding` says which (code, message, help)."""

    def __init__(self, finding: Finding):
        super().__init__(f"{finding.code} {finding.message} (help: {finding.help})")
        self.finding = finding


def monitor_config(monitor=None):
    """The setup's `monitor:` section: a schemas Monitor, a dict for one, or None for the defaults."""
    from pydantic import ValidationError

    from dino_guard.schemas.setup import Monitor as MonitorConfig

    if monitor is None:
        return MonitorConfig()
    if isinstance(monitor, MonitorConfig):
        return monitor
    try:
        return MonitorConfig.model_validate(monitor)
    except ValidationError as exc:  # one line naming the field, as the setup loader does
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"monitor={monitor!r}: monitor.{field}: {first['msg']} "
                         f"(the fields of the setup's monitor: section; `dino-guard schema` lists them)") from None


def is_main_rank() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def show(findings: list[Finding]) -> None:
    """Print findings as `dino-guard check` prints them (rank 0 only)."""
    if findings and is_main_rank():
        click.echo("\n".join(finding_lines(findings)), err=True)


def first_error(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.severity == Severity.ERROR), None)


def used_temperature(criterion, args: tuple, kwargs: dict) -> float:
    """The teacher temperature DINOLoss.forward(teacher_out, student_out, teacher_temp, epoch) uses."""
    temp = kwargs.get("teacher_temp", args[2] if len(args) > 2 else None)
    epoch = kwargs.get("epoch", args[3] if len(args) > 3 else None)
    if temp is not None:
        return float(temp)
    if epoch is not None and epoch < criterion.warmup_teacher_temp_epochs:
        return float(criterion.teacher_temp_schedule[epoch])
    return float(criterion.teacher_temp)


@dataclass
class Pending(LateStep):
    """A finished step; values: loss, teacher std, teacher entropy (all-reduced), then the terms' numbers."""

    teacher_temp: float
    in_teacher_warmup: bool
    after_lr_warmup: bool
    called: tuple = ()  # the terms the loop called in the step: the others' nan places mean "not called"


TERM_KEYS = {"iBOT": "ibot", "KoLeo": "koleo"}  # metrics keys of DINOv2's other terms, as `dino-guard train` writes


def ibot_mask(args: tuple, kwargs: dict) -> torch.Tensor:
    """The (B, H, W) mask of IBOTPatchLoss.forward(teacher_out, student_out, mask, teacher_temp)."""
    return kwargs["mask"] if "mask" in kwargs else args[2]


def used_ibot_temperature(criterion, args: tuple, kwargs: dict) -> float:
    """The teacher temperature IBOTPatchLoss.forward(teacher_out, student_out, mask, teacher_temp) uses."""
    temp = kwargs.get("teacher_temp", args[3] if len(args) > 3 else None)
    return float(temp if temp is not None else criterion.teacher_temp)


class Watch:
    """Hooks on the user's DINOLoss (and DINOv2's IBOTPatchLoss, KoLeoLoss) feeding the trainer's Monitor,
    one step late.

    `terms`: DINOv2's other losses by name ("iBOT", "KoLeo"). Their outputs are
    each step's terms, so a non-finite one is named; the iBOT loss's teacher
    outputs feed the Monitor's second head (monitor.patch). Without optimizer
    steps (`per_call`) a step then ends at the next DINO loss call, as the
    user's step computes DINO, then iBOT and KoLeo.
    """

    def __init__(self, criterion: Located, monitor: Monitor, per_call: bool, output_dir: Path | None,
                 on_stop: Callable[[Finding], None] | None = None, raise_on_stop: bool = True,
                 terms: dict | None = None, keep: list | None = None):
        self.criterion, self.monitor, self.per_call = criterion, monitor, per_call
        self.terms: dict = terms or {}
        self.output_dir, self.on_stop, self.raise_on_stop = output_dir, on_stop, raise_on_stop
        # the modules whose last finite weights on_stop gets (copies kept only when there is an on_stop)
        # per call with terms a step ends after the user's optimizer step (at the next DINO call), so the copy
        # taken then is of the next step's weights: a third copy keeps the step before the stopping one
        self._ends_after_update = per_call and bool(self.terms)
        self.last_finite = (LastFinite(keep, copies=3 if self._ends_after_update else 2)
                            if keep and on_stop is not None else None)
        self.lr_source: Callable[[], float | None] = lambda: None
        self.on_row: Callable[[dict], None] = lambda row: None
        self.step, self.late, self.findings, self.stopped = 0, OneStepLate(), [], None
        self.history: list = []
        self._last_lr: float | None = None
        # guard.lightning counts the DINO centre's moves per optimizer step in the first steps under accumulation
        self.count_center, self.center_moves, self._center_before = False, 0, None
        self._reset()
        module = criterion.module
        self._handles = [module.register_forward_pre_hook(self._before, with_kwargs=True),
                         module.register_forward_hook(self._after)]
        for name, located in self.terms.items():
            self._handles.append(located.module.register_forward_hook(
                lambda m, args, out, name=name: self._after_term(name, out)))
        if "iBOT" in self.terms:
            self._handles.append(self.terms["iBOT"].module.register_forward_pre_hook(self._before_ibot,
                                                                                      with_kwargs=True))

        if output_dir is not None and is_main_rank():
            output_dir.mkdir(parents=True, exist_ok=True)
            self._output(runfolder.write_text, output_dir / "metrics.jsonl", "")  # a new file: a link is replaced

    def _reset(self) -> None:
        self._loss, self._calls, self._stats, self._temp = None, 0, None, None
        self._term_sums, self._ibot_stats, self._ibot_share = {}, None, None

    # ------------------------------------------------------------ hooks (the user's step)

    def _before(self, module, args: tuple, kwargs: dict) -> None:
        if self.per_call and self.terms and self._loss is not None:
            self.end_step()  # the previous step's iBOT and KoLeo came after its DINO call
        teacher_out = args[0] if args else kwargs["teacher_out"]
        if self.count_center and teacher_out[0].device.type != "meta":
            self._center_before = module.center.detach().clone()
        if self._stats is None and teacher_out[0].device.type != "meta":  # meta: the pre-flight's copies
            self._temp = used_temperature(module, args, kwargs)
            self._stats = teacher_stats(teacher_out[0].detach().float(), module.center, self._temp)

    def _after(self, module, args: tuple, output) -> None:
        output = loss_tensor(output)
        if output is None or output.device.type == "meta" or self._stats is None:
            return
        loss = output.detach().float()
        self._loss = loss if self._loss is None else self._loss + loss
        self._calls += 1
        if self._center_before is not None:
            self.center_moves += int(not torch.equal(self._center_before, module.center))
            self._center_before = None
        if self.per_call and not self.terms:
            self.end_step()

    def _before_ibot(self, module, args: tuple, kwargs: dict) -> None:
        teacher_out = args[0] if args else kwargs["teacher_out"]
        if teacher_out.device.type == "meta":
            return
        share = masked_image_share(ibot_mask(args, kwargs))  # summed as the terms are: the step's mean share
        self._ibot_share = share if self._ibot_share is None else self._ibot_share + share
        if self._ibot_stats is None and len(teacher_out) >= 2:
            self._ibot_stats = teacher_stats(teacher_out.detach().float(), module.center.value,
                                             used_ibot_temperature(module, args, kwargs))

    def _after_term(self, name: str, output: torch.Tensor) -> None:
        if output.device.type == "meta":
            return
        value = output.detach().float()
        self._term_sums[name] = self._term_sums.get(name, 0.0) + value  # KoLeo: lightly calls it per global view

    # ------------------------------------------------------------ steps

    def end_step(self) -> None:
        """Close the step: queue its numbers (no sync), then record the step before it."""
        if self._loss is None:
            return
        values = torch.stack([self._loss / self._calls, *self._stats, *self._extra_values()]).double()
        lr = self.lr_source()
        after_lr_warmup = lr is not None and self._last_lr is not None and lr <= self._last_lr
        if lr is not None:
            self._last_lr = lr
            self.monitor.lr = max(self.monitor.lr or 0.0, lr)
        host, ready = to_host_later(_mean_over_ranks(values))
        warmup = self._temp < float(self.criterion.module.teacher_temp)
        called = tuple(name for name in self.terms if name in self._term_sums)
        queued = Pending(self.step + 1, host, ready, self._temp, warmup, after_lr_warmup, called)
        self.step += 1
        self._reset()
        previous = self.late.push(queued)
        if previous is not None:
            self._record(previous)
        if self.last_finite is not None:  # the weights now in the modules: before this step's update, or after it
            self.last_finite.keep(self.step + 1 if self._ends_after_update else self.step)

    def _extra_values(self) -> list:
        """Each other term (averaged over the step's DINO calls); with iBOT, its head's std and entropy and
        the iBOT cross-entropy of a masked token (the term over the share of images with masked patches).
        A term not called in the step holds a nan place only (Pending.called leaves it out of the checks)."""
        if not self.terms:
            return []
        nan = torch.full((), float("nan"), device=self._loss.device)
        sums = [self._term_sums.get(name, nan) for name in self.terms]
        if "iBOT" not in self.terms:
            return [v / self._calls for v in sums]
        share = self._ibot_share if self._ibot_share is not None else nan
        cross_entropy = self._term_sums.get("iBOT", nan) / share  # no masked image: nan, and no std: not watched
        return [*(v / self._calls for v in sums), *(self._ibot_stats or [nan, nan]), cross_entropy]

    def flush(self) -> None:
        """Record the last step (at the end of the run)."""
        if self.per_call and self.terms:
            self.end_step()  # the last step is still open (it ends at the next DINO call)
        previous = self.late.take()
        if previous is not None:
            self._record(previous)

    def _record(self, p: Pending) -> None:
        loss, std, entropy, *extra = p.numbers()
        # only the terms called in the step: a term the loop skipped (a weight of 0 in warm-up) is not broken
        terms = {name: value for name, value in zip(self.terms, extra, strict=False) if name in p.called}
        # the iBOT head's monitor: (cross-entropy of a masked token, teacher std, teacher entropy)
        patch = (extra[-1], *extra[len(self.terms):-1]) if "iBOT" in terms else None
        # grad norm 0.0: the guard does not see gradients; DG501 watches the loss and each term itself
        events = self.monitor.observe(p.step, loss, 0.0, std, entropy, p.in_teacher_warmup, p.after_lr_warmup,
                                      terms={"DINO": loss, **terms} if terms else None, patch=patch)
        found = [live_finding(e.code, self._path_of(e), e.field, e.message, e.help) for e in events]
        row = {"step": p.step, "loss": loss, "teacher_std": std, "teacher_entropy": entropy,
               "teacher_temp": p.teacher_temp, **{TERM_KEYS[n]: v for n, v in terms.items()}}
        if patch is not None:
            row.update(ibot_teacher_std=patch[1], ibot_teacher_entropy=patch[2])
        self._write(row, found)
        stop = next((f for f, e in zip(found, events, strict=True) if e.stop), None)
        if stop is not None and self.stopped is None:
            self.stop(stop, p.step)

    def _path_of(self, event) -> str:
        """The module a finding is about: the loss whose term broke, or the DINO loss."""
        name = next((n for n in self.terms if f"the {n} " in event.message), None)
        return self.terms[name].path if name else self.criterion.path

    def stop(self, finding: Finding, step: int | None = None) -> None:
        self.stopped = finding
        self.close_outputs()
        if self.last_finite is not None and step is not None:
            restored = self.last_finite.restore(step)
            if restored is not None and is_main_rank():
                click.echo(f"dino-guard: the weights are not finite after step {step}; on_stop gets the weights "
                           f"that gave step {restored}'s finite loss (copied back into the modules)", err=True)
        if self.on_stop is not None:
            self.on_stop(finding)
        if self.raise_on_stop:
            raise DinoGuardStop(finding)

    def _write(self, row: dict, found: list) -> None:
        from dino_guard.trainer.metrics import append_metric

        self.findings += found
        self.history.append(row)
        self.on_row(row)
        show(found)
        if self.output_dir is not None and is_main_rank():
            self._output(append_metric, self.output_dir / "metrics.jsonl",
                         {**row, "findings": [f.to_dict() for f in found]} if found else row)

    def _output(self, write: Callable, path: Path, *args) -> None:
        """Write one of the guard's files; a failure is said once and ends the guard's writing, never the
        user's loop (a metrics.jsonl planted as a link, a full disk: the checks go on)."""
        if self.output_dir is None:
            return
        try:
            write(path, *args)
        except OSError as exc:
            click.echo(f"dino-guard: warning: cannot write {path} ({exc.strerror or exc}); the guard goes on "
                       "checking but writes no more files", err=True)
            self.output_dir = None

    # ------------------------------------------------------------ end

    def close_outputs(self) -> None:
        """loss.png next to metrics.jsonl."""
        from dino_guard.trainer.plot import plot_run

        if self.output_dir is None or not self.history or not is_main_rank():
            return
        dim = int(self.criterion.module.center.shape[-1])
        stop = (self.history[-1]["step"], self.stopped.code) if self.stopped is not None else None  # the stop's row
        ibot = self.terms.get("iBOT")
        ibot_dim = int(ibot.module.center.value.shape[-1]) if ibot else None
        # a new file renamed over the name, as metrics.jsonl: a planted link is replaced, never followed
        self._output(runfolder.replaced, self.output_dir / "loss.png",
                     lambda tmp: plot_run(self.history, dim, tmp, "DINO loss (dino-guard)", stop=stop,
                                          ibot_output_dim=ibot_dim))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def guard_monitor(config, criterion, terms: dict, precision: str) -> Monitor:
    """The trainer's Monitor at the DINO loss's width; with an iBOT loss, a second one on the iBOT head."""
    monitor = Monitor(config, int(criterion.center.shape[-1]), precision)
    if "iBOT" in terms:
        monitor.patch = Monitor(config, int(terms["iBOT"].module.center.value.shape[-1]), precision, head="iBOT")
    return monitor


def _mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Every rank sees the same numbers, so every rank stops at the same step."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


class DinoGuard:
    """The guard of one run: pre-flight findings and the watch on the DINOLoss."""

    def __init__(self, watch: Watch, preflight_findings: list):
        self.watch, self.preflight_findings = watch, preflight_findings

    @classmethod
    def attach(cls, criterion, *, ibot=None, koleo=None, student=None, teacher=None, dataloader=None,
               gpu: str | None = None, output_dir=None, monitor=None, precision: str = "fp32",
               on_stop: Callable[[Finding], None] | None = None) -> DinoGuard:
        """Check the live objects, then watch every call of `criterion` (a lightly DINOLoss).

        DINOv2: `ibot` (lightly's IBOTPatchLoss) and `koleo` (KoLeoLoss) are watched
        too: each term is recorded, a non-finite one stops the run naming it, and the
        iBOT head is watched for collapse.

        student / teacher: modules holding the DINOProjectionHeads and their backbones
        (one module holding both is fine). gpu: a catalog name for the memory check.
        monitor: the setup's `monitor:` section (schemas Monitor or a dict). on_stop:
        called with the finding before DinoGuardStop is raised (save a checkpoint there); when
        the weights went non-finite, student and teacher hold the last finite weights by then
        (guard/snapshot.py). Anything but a lightly DINOLoss is NotADinoLoss.
        """
        require_dino_loss(criterion)
        config = monitor_config(monitor)  # a bad section fails before the pre-flight's work
        roots = {name: m for name, m in (("student", student), ("teacher", teacher)) if m is not None}
        located = Located("criterion", criterion)
        terms = {name: Located(path, m) for name, path, m in (("iBOT", "ibot", ibot), ("KoLeo", "koleo", koleo))
                 if m is not None}
        parts = find_parts(located, roots, terms)
        findings = preflight(parts, dataloader, RunFacts(gpu=gpu, precision=precision))
        show(findings)
        error = first_error(findings)
        if error is not None:
            if on_stop is not None:
                on_stop(error)
            raise DinoGuardStop(error)
        output = Path(output_dir) if output_dir is not None else None
        watch = Watch(located, guard_monitor(config, criterion, terms, precision), per_call=True,
                      output_dir=output, on_stop=on_stop, terms=terms, keep=list(roots.values()))
        return cls(watch, findings)

    @property
    def findings(self) -> list[Finding]:
        return [*self.preflight_findings, *self.watch.findings]

    @property
    def steps(self) -> int:
        return self.watch.step

    def close(self) -> None:
        """Check the last step, write loss.png, remove the hooks. Raises DinoGuardStop like a step would."""
        try:
            self.watch.flush()
        finally:
            self.watch.remove()
        if self.watch.stopped is None:
            self.watch.close_outputs()

    def __enter__(self) -> DinoGuard:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the loop failed (or a stop was raised): keep the user's exception
            self.watch.remove()
            if self.watch.stopped is None:
                self.watch.close_outputs()

