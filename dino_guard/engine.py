"""Run every registered rule over a loaded setup and collect findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Optional

from dino_guard import backbones
from dino_guard.findings import Finding
from dino_guard.loader import Loaded, Locations
from dino_guard.rules.registry import Rule, all_rules, make_finding
from dino_guard.schemas import Setup


@dataclass
class Options:
    select: tuple = ()  # code prefixes to keep (empty: all)
    ignore: tuple = ()  # code prefixes to drop
    gpu: Optional[str] = None  # overrides hardware.gpu
    count_images: bool = True  # rules may count files under data.path

    def wants(self, code: str) -> bool:
        if self.select and not any(code.startswith(p) for p in self.select):
            return False
        return not any(code.startswith(p) for p in self.ignore)


@dataclass
class Context:
    """What a rule sees: the setup, where its fields are, and resolved facts."""

    path: str
    setup: Setup
    locations: Locations = field(default_factory=Locations)
    known: Optional[frozenset] = None  # None: every field is known (a setup file)
    options: Options = field(default_factory=Options)

    @cached_property
    def backbone(self) -> Optional[backbones.BackboneInfo]:
        return backbones.lookup(self.setup.model.backbone.name)

    @cached_property
    def dataset_size(self) -> Optional[int]:
        """Training images (stated, synthetic, or counted under data.path): counted once per file checked."""
        from dino_guard.rules.data import dataset_size

        return dataset_size(self.setup.data, self.path, self.options.count_images)

    @property
    def feature_dim(self) -> Optional[int]:
        """The backbone's pooled width: the user's statement wins over the table."""
        if self.setup.model.backbone.feature_dim:
            return self.setup.model.backbone.feature_dim
        return self.backbone.feature_dim if self.backbone else None

    @property
    def patch_size(self) -> Optional[int]:
        if self.setup.model.backbone.patch_size:
            return self.setup.model.backbone.patch_size
        return self.backbone.patch_size if self.backbone else None

    @property
    def gpu_name(self) -> Optional[str]:
        return self.options.gpu or self.setup.hardware.gpu

    def is_known(self, dotted: str) -> bool:
        if self.known is None:
            return True
        return any(dotted == k or dotted.startswith(k + ".") for k in self.known)


def run_rules(ctx: Context, rules: Optional[Iterable[Rule]] = None) -> list[Finding]:
    findings = []
    for entry in rules if rules is not None else all_rules():
        if entry.check is None or not ctx.options.wants(entry.code):
            continue
        if not all(ctx.is_known(need) for need in entry.needs):
            continue
        for issue in entry.check(ctx):
            position = ctx.locations.of(issue.field) if issue.field else (1, 1)
            findings.append(make_finding(entry.code, ctx.path, position, issue.field, issue.message, issue.help))
    return findings


def check_loaded(loaded: Loaded, options: Optional[Options] = None) -> list[Finding]:
    """Findings for one loaded source: its load problems, then every rule."""
    options = options or Options()
    findings = [f for f in loaded.findings if options.wants(f.code)]
    if loaded.setup is not None:
        ctx = Context(loaded.path, loaded.setup, loaded.locations, loaded.known, options)
        findings.extend(run_rules(ctx))
    return sorted(findings, key=lambda f: f.sort_key)
