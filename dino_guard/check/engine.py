"""Run every registered rule over a loaded setup and collect findings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from dino_guard import backbones, gpus
from dino_guard.codes import make_finding
from dino_guard.datafiles import dataset_size, labelled_folder
from dino_guard.findings import Finding
from dino_guard.memory import analytic
from dino_guard.memory.spec import MemorySpec, spec_from_setup
from dino_guard.plan import RunPlan, plan_run
from dino_guard.rules.registry import Rule, rules_for
from dino_guard.schemas import Setup
from dino_guard.setupfile.loader import Loaded, Locations, View


@dataclass
class Options:
    select: tuple = ()  # code prefixes to keep (empty: all)
    ignore: tuple = ()  # code prefixes to drop
    gpu: str | None = None  # overrides hardware.gpu
    count_images: bool = True  # rules may count files under data.path
    warn_unused_ignores: bool = False  # DG008 for suppression comments that silence nothing
    src: tuple = ()  # folders of the project's own packages ([tool.dino-guard] src): a lightly there is first-party

    def wants(self, code: str) -> bool:
        if self.select and not any(code.startswith(p) for p in self.select):
            return False
        return not any(code.startswith(p) for p in self.ignore)


@dataclass(frozen=True)
class BatchMemory:
    """The analytic memory picture a DG6xx rule compares: the card, the spec, peak bytes per batch size."""

    gpu: gpus.GPU
    spec: MemorySpec
    info: backbones.BackboneInfo

    def peak_of(self, batch_size: int) -> int:
        return analytic.estimate(self.spec.with_batch(batch_size), self.info).peak_allocated_bytes


@dataclass
class Context:
    """What a rule sees: the setup, where its fields are, and resolved facts."""

    path: str
    setup: Setup
    locations: Locations = field(default_factory=Locations)
    known: frozenset | None = None  # None: every field is known (a setup file)
    options: Options = field(default_factory=Options)
    unknown: frozenset = frozenset()  # fields left open inside a known section (a script's **kwargs)

    @cached_property
    def backbone(self) -> backbones.BackboneInfo | None:
        return backbones.lookup(self.setup.model.backbone.name)

    @cached_property
    def dataset_size(self) -> int | None:
        """Training images (stated, synthetic, or counted under data.path): counted once per file checked."""
        return dataset_size(self.setup.data, self.path, self.options.count_images)

    @cached_property
    def run_plan(self) -> RunPlan:
        """Effective batch, lr used, kNN hold-out and steps, as the trainer computes them.

        A folder not looked at (no counting) is taken as labelled when the
        setup asks for a hold-out: the trainer holds one out of labelled folders.
        """
        looked = self.options.count_images or self.setup.data.synthetic
        labelled = labelled_folder(self.setup.data, self.path) if looked else None
        return plan_run(self.setup, self.dataset_size, labelled if labelled is not None else bool(self.setup.data.path))

    @cached_property
    def dino_transform(self):
        """The transform section when the data set has a DINO transform, else None (DG101 says so)."""
        return self.setup.transform if self.setup.has_dino_transform else None

    @cached_property
    def gpu(self) -> gpus.GPU | None:
        """The card the batch is checked against (--gpu over hardware.*), None when unset or unknown (DG603)."""
        try:
            return gpus.for_setup(self.setup, self.options.gpu)
        except gpus.GpuError:
            return None

    @cached_property
    def memory_estimate(self) -> BatchMemory | None:
        """The analytic memory picture, or None when a GPU, the backbone's facts or the transform is unknown."""
        if self.gpu is None or self.backbone is None or self.dino_transform is None:
            return None
        memory = BatchMemory(self.gpu, spec_from_setup(self.setup), self.backbone)
        try:
            memory.peak_of(memory.spec.batch_size)
        except analytic.AnalyticUnavailable:
            return None
        return memory

    @property
    def feature_dim(self) -> int | None:
        """The backbone's pooled width: the user's statement wins over the table."""
        return backbones.resolve(self.setup.model.backbone).width

    @property
    def patch_size(self) -> int | None:
        return backbones.resolve(self.setup.model.backbone).patch

    def is_known(self, dotted: str) -> bool:
        if any(dotted == k or dotted.startswith(k + ".") for k in self.unknown):
            return False
        if self.known is None:
            return True
        return any(dotted == k or dotted.startswith(k + ".") for k in self.known)


def run_rules(ctx: Context, rules: Iterable[Rule] | None = None) -> list[Finding]:
    findings = []
    for entry in rules if rules is not None else rules_for("setup"):
        if entry.check is None or entry.origin != "setup" or not ctx.options.wants(entry.code):
            continue
        if not all(ctx.is_known(need) for need in entry.needs):
            continue
        for issue in entry.check(ctx):
            position = ctx.locations.of(issue.field) if issue.field else (1, 1)
            findings.append(make_finding(entry.code, ctx.path, position, issue.field, issue.message, issue.help,
                                         issue.fix, issue.severity))
    return findings


def run_script_rules(loaded: Loaded, options: Options) -> list[Finding]:
    """The rules only a script can break, over what the script reader saw; once per code and location."""
    findings, seen = [], set()
    for entry in rules_for("script"):
        if not options.wants(entry.code):
            continue
        for issue in entry.check(loaded.evidence):
            if (entry.code, issue.position) not in seen:
                seen.add((entry.code, issue.position))
                findings.append(make_finding(entry.code, loaded.path, issue.position, issue.field, issue.message,
                                             issue.help, issue.fix, issue.severity))
    return findings


def _view_findings(path: str, view: View, options: Options, found: list[Finding]) -> list[Finding]:
    """The findings of the rules about a view's sections that the setup's own run did not make at the same place
    (a teacher head deep-copied from the student's has the student's positions: one mistake, one finding)."""
    rules = [r for r in rules_for("setup")
             if any(need == s or need.startswith(s + ".") for need in r.needs for s in view.sections)]
    seen = {(f.code, f.line, f.column) for f in found}
    ctx = Context(path, view.setup, view.locations, view.known, options)
    return [f for f in run_rules(ctx, rules) if (f.code, f.line, f.column) not in seen]


def check_loaded(loaded: Loaded, options: Options | None = None) -> list[Finding]:
    """Findings for one loaded source: its load problems, then every rule."""
    options = options or Options()
    findings = [f for f in loaded.findings if options.wants(f.code)]
    if loaded.setup is not None:
        ctx = Context(loaded.path, loaded.setup, loaded.locations, loaded.known, options, loaded.unknown)
        findings.extend(run_rules(ctx))
    for view in loaded.views:
        findings.extend(_view_findings(loaded.path, view, options, findings))
    if loaded.evidence is not None:
        findings.extend(run_script_rules(loaded, options))
    return sorted(findings, key=lambda f: f.sort_key)
