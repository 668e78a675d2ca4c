"""Loss-trend checks run after every optimizer step (codes DG501-DG507).

Pure Python on floats, so the logic is easy to follow and to test; the loop
feeds it the (all-reduced) loss, gradient norm, teacher std and entropy.
Every rank sees the same numbers, so every rank stops at the same step.
Thresholds: the setup's `monitor:` section (documented in rules/monitor.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# DG503 judges a std below the floor against the run's own history (Monitor._dimensional):
FELL = 0.5  # below half the run's earlier peak (one that reached the floor): the spread was there and is lost
ONE_PROTOTYPE = 0.05  # a loss below this fraction of ln(K): every image on one prototype, and the student copies it


@dataclass
class Event:
    code: str
    field: str  # the setup field to change
    message: str
    help: str
    stop: bool = False


@dataclass
class Monitor:
    cfg: object  # schemas.Monitor
    output_dim: int
    precision: str = "fp32"
    lr: float | None = None  # peak learning rate, for the help text; None: not known (the guard without an optimizer)
    head: str = ""  # "" the class-token (DINO) head; "iBOT": a monitor of the masked-patch head (collapse only)
    patch: Monitor | None = None  # DINOv2: the iBOT head's collapse checks, fed by observe(patch=...)
    losses: list = field(default_factory=list)
    stds: list = field(default_factory=list)
    entropies: list = field(default_factory=list)
    min_smoothed: float = math.inf
    rising: int = 0
    reported: set = field(default_factory=set)
    first_window: float | None = None

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "stds": list(self.stds), "entropies": list(self.entropies),
                "min_smoothed": self.min_smoothed, "rising": self.rising, "reported": sorted(self.reported),
                "first_window": self.first_window, "patch": self.patch.state_dict() if self.patch else None}

    def load_state_dict(self, state: dict) -> None:
        self.losses, self.stds, self.entropies = list(state["losses"]), list(state["stds"]), list(state["entropies"])
        self.min_smoothed, self.rising = state["min_smoothed"], state["rising"]
        self.reported, self.first_window = set(state["reported"]), state["first_window"]
        if self.patch is not None and state.get("patch"):
            self.patch.load_state_dict(state["patch"])

    def observe(self, step: int, loss: float, grad_norm: float, teacher_std: float, teacher_entropy: float,
                in_teacher_warmup: bool, after_lr_warmup: bool, terms: dict | None = None,
                patch: tuple | None = None) -> list[Event]:
        """Record one optimizer step; return what to report (an Event with stop=True ends the run).

        `terms`: the loss's terms by name (DINOv2: DINO, iBOT, KoLeo), so a
        non-finite loss names the term that broke. `patch`: (iBOT cross-entropy
        of a masked token, teacher std, teacher entropy) of the masked-patch
        head, watched for collapse. The cross-entropy is the iBOT term over the
        share of images with masked patches (teacher_stats.masked_image_share):
        lightly's term is that share x it, and only it nears ln K on collapse.
        """
        if not self.cfg.enabled:
            return []
        bad = self._non_finite(step, loss, grad_norm, terms or {})
        if bad:
            return [bad]
        events = self._collapse(step, loss, teacher_std, teacher_entropy)
        if len(self.losses) > self.cfg.grace_steps:
            events += self._divergence(step, in_teacher_warmup)
            if self.rising == 0 and not in_teacher_warmup:  # a rise is reported as such, not as "no progress"
                events.append(self._progress(step, after_lr_warmup))
        if self.patch is not None and patch is not None:
            events += self.patch._collapse(step, *patch)
        return [e for e in events if e is not None]

    def _collapse(self, step: int, loss: float, std: float, entropy: float) -> list:
        """Record the step's numbers; the two collapse checks once past the grace steps."""
        if self.head and not math.isfinite(std):  # no masked patch token this step: nothing measured
            return []
        self.losses.append(loss)
        self.stds.append(std)
        self.entropies.append(entropy)
        if len(self.losses) <= self.cfg.grace_steps:
            return []
        return [self._named(e) for e in (self._uniform(step), self._dimensional(step)) if e]

    def _named(self, event: Event) -> Event:
        """An event of the iBOT head's monitor says so and points at the ibot: fields."""
        if not self.head:
            return event
        fix = event.help.replace("loss.teacher_temp and warmup_teacher_temp", "ibot.teacher_temp")
        return Event(event.code, event.field.replace("loss.", "ibot."),
                     f"the {self.head} head: {event.message}", fix.replace("loss.", "ibot."), event.stop)

    # ------------------------------------------------------------ checks

    def _non_finite(self, step: int, loss: float, grad_norm: float, terms: dict) -> Event | None:
        broken = next((name for name, value in terms.items() if not math.isfinite(value)), None)
        if broken:  # the guard's `loss` is the DINO term alone: a broken iBOT or KoLeo term is only here
            return self._non_finite_term(step, broken, terms[broken])
        if math.isfinite(loss) and (math.isfinite(grad_norm) or self.precision == "fp16"):
            return None  # fp16: an inf gradient is the GradScaler's business (it skips the step)
        what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
        fix = "use train.precision: bf16 instead of fp16, " if self.precision == "fp16" else ""
        return Event("DG501", "train.precision" if self.precision == "fp16" else "optimizer.lr",
                     # train names its last good checkpoint; the guard has none
                     f"step {step}: {what} is not finite; stopped",
                     f"{fix}lower optimizer.lr{self._lr_used()} and set optimizer.clip_grad (e.g. 3.0)",
                     stop=True)

    def _non_finite_term(self, step: int, name: str, value: float) -> Event:
        """DG501 naming the term: "the iBOT term is nan at step 812"."""
        fields = {"iBOT": "ibot.weight", "KoLeo": "koleo.weight"}
        why = ("KoLeo is -log of the distance to the nearest other image: two identical images in one batch "
               "(per device) make it infinite; deduplicate the data, or lower koleo.weight (0 turns it off); "
               if name == "KoLeo" else "")
        return Event("DG501", fields.get(name, "optimizer.lr"), f"the {name} term is {value} at step {step}; stopped",
                     f"{why}lower optimizer.lr{self._lr_used()} and set optimizer.clip_grad (e.g. 3.0)", stop=True)

    def _window(self, values: list) -> list | None:
        w = self.cfg.collapse_window
        return values[-w:] if len(values) - self.cfg.grace_steps >= w else None

    def _uniform(self, step: int) -> Event | None:
        ln_d = math.log(self.output_dim)
        tol = self.cfg.uniform_collapse_tolerance * ln_d
        losses, ents = self._window(self.losses), self._window(self.entropies)
        if not losses or max(abs(x - ln_d) for x in losses) > tol or max(abs(e - ln_d) for e in ents) > tol:
            return None
        return Event("DG502", "loss.teacher_temp",
                     f"step {step}: uniform collapse: loss {losses[-1]:.4f} and teacher entropy {ents[-1]:.4f} have "
                     f"stayed within {self.cfg.uniform_collapse_tolerance:.0%} of ln(output_dim) = {ln_d:.4f} "
                     f"for {len(losses)} steps",
                     "sharpen the teacher: loss.teacher_temp and warmup_teacher_temp at most 0.07 (0.04 is DINO's)",
                     stop=True)

    def _dimensional(self, step: int) -> Event | None:
        """The teacher lost the spread of its outputs: a std below the floor that fell there from above it,
        or one that stays there with the loss near 0 (every image on one prototype).

        A std below the floor alone is not collapse: LayerScale (DINOv2's init_values 1e-5) makes every
        block nearly the identity, so the teacher's std starts near zero and grows, and an EMA teacher
        (momentum 0.996-0.9995) can keep that init for many steps. So, at any step of the run (with or
        without an lr warmup), a std below the floor is judged against the run's own history and loss.
        """
        stds = self._window(self.stds)
        floor = self.cfg.min_teacher_std / math.sqrt(self.output_dim)
        if not stds or max(stds) >= floor:
            return None
        how = self._fell(stds, floor) or self._on_one_prototype()
        if how is None:
            return None
        return Event("DG503", "loss.center_momentum",
                     f"step {step}: dimensional collapse: std of l2-normalized teacher outputs {stds[-1]:.2e} has "
                     f"stayed below {floor:.2e} ({self.cfg.min_teacher_std} x 1/sqrt({self.output_dim})) "
                     f"for {len(stds)} steps{how}: the teacher gives every image the same output",
                     "keep centering on (loss.center_momentum 0.9, not 1.0) and lower optimizer.lr", stop=True)

    def _fell(self, stds: list, floor: float) -> str | None:
        """The std had reached the floor earlier in the run and is now below FELL x that peak."""
        peak = max(self.stds[:-len(stds)], default=0.0)
        if peak < floor or max(stds) >= FELL * peak:
            return None
        return f", down from {peak:.2e}"

    def _on_one_prototype(self) -> str | None:
        """The loss confirms it: below ONE_PROTOTYPE x ln K over the window. The loss is the teacher's entropy
        plus the student's KL to it, so both are near 0: the teacher puts every image on the same prototype
        and the student copies it (centering keeps a healthy teacher's entropy well above 0). A std that starts
        near zero and grows (LayerScale) or an EMA teacher still at its init comes with a loss that rises
        as the center spreads the teacher out, or stays well above 0 while the student learns."""
        losses = self._window(self.losses)
        if max(losses) > ONE_PROTOTYPE * math.log(self.output_dim):
            return None
        return (f", with the loss {losses[-1]:.4f} and the teacher entropy {self.entropies[-1]:.4f} below "
                f"{ONE_PROTOTYPE:.0%} of ln(output_dim): every image goes to one prototype")

    def _divergence(self, step: int, in_teacher_warmup: bool) -> list:
        # The loss is the teacher's entropy plus KL(teacher || student). A rise of the
        # entropy alone (centering flattening a teacher that had piled onto a few
        # prototypes, a warmer teacher) is the target getting harder, not the student
        # failing; divergence is the KL part (loss - teacher entropy) climbing, by a
        # factor and by a margin. It is averaged over a full divergence_window: a teacher
        # that piles onto one prototype for a few steps lets the student close the KL to
        # near 0, and a short mean taken there would make the usual KL afterwards look like a rise.
        w = self.cfg.divergence_window
        if len(self.losses) < w:
            return []
        excess = [loss - entropy for loss, entropy in zip(self.losses[-w:], self.entropies[-w:], strict=True)]
        smoothed = sum(excess) / w
        self.min_smoothed = min(self.min_smoothed, smoothed)
        margin = self.cfg.divergence_margin * math.log(self.output_dim)
        above_factor = self.min_smoothed <= 0 or smoothed > self.cfg.divergence_factor * self.min_smoothed
        if not above_factor or smoothed - self.min_smoothed <= margin:
            self.rising = 0
            return []
        numbers = (f"loss - teacher entropy (the KL the student has not closed, smoothed) rose from its minimum "
                   f"{self.min_smoothed:.4f} to {smoothed:.4f}")
        if in_teacher_warmup:
            return [self._once(Event("DG507", "loss.warmup_teacher_temp",
                                     f"step {step}: {numbers}, during the teacher temperature warmup: expected",
                                     "nothing to change: a warmer teacher gives a higher cross-entropy"))]
        self.rising += 1
        if self.rising >= self.cfg.patience:
            return [Event("DG505", "optimizer.lr", f"step {step}: divergence: {numbers} for {self.rising} steps",
                          f"lower optimizer.lr{self._lr_used()}, keep optimizer.clip_grad, "
                          "check optimizer.warmup_epochs", stop=True)]
        return [self._once(Event("DG504", "optimizer.lr", f"step {step}: {numbers}",
                                 f"if it keeps rising the run stops after {self.cfg.patience} steps; "
                                 f"consider a lower optimizer.lr{self._lr_used()}"))]

    def _progress(self, step: int, after_lr_warmup: bool) -> Event | None:
        w = self.cfg.collapse_window
        if self.first_window is None and len(self.losses) >= w:
            # the loss as the run started: a fast teacher can sharpen within the first
            # few dozen steps, and a window taken there is a transient low, not a baseline
            self.first_window = sum(self.losses[:w]) / w
        if self.first_window is None or not after_lr_warmup or len(self.losses) < self.cfg.grace_steps + 2 * w:
            return None
        recent = sum(self.losses[-w:]) / w
        if recent < self.first_window * (1 - self.cfg.min_progress):
            self.reported.add("DG506")  # made progress: never warn later for noise
            return None
        first_entropy = sum(self.entropies[:w]) / w
        if abs(sum(self.entropies[-w:]) / w - first_entropy) > 0.1 * math.log(self.output_dim):
            return None  # the teacher's entropy moved: the loss follows a target that changed, not a stuck student
        return self._once(Event("DG506", "optimizer.lr",
                                f"step {step}: no progress after warmup: "
                                f"mean loss {recent:.4f} over the last {w} steps "
                                f"vs {self.first_window:.4f} at the start",
                                f"check optimizer.lr{self._lr_used()} and teacher_momentum.start"))

    def _lr_used(self) -> str:
        return f" (peak lr used {self.lr:.3g})" if self.lr is not None else ""

    def _once(self, event: Event) -> Event | None:
        if event.code in self.reported:
            return None
        self.reported.add(event.code)
        return event
