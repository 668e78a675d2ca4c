"""Property-based fuzzing of the check path: no exception escapes, whatever the setup says.

In-process (no subprocess per example): the text or data goes through the
loader, every rule, every output format (encoded to UTF-8, as printing does)
and, for a valid setup, the analytic estimate and the batch plan. The only
exceptions allowed are the documented ones: UnreadableInput, and an analytic
method that does not know the backbone (MethodUnavailable, exit 2).
Budgets are fixed and derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from dino_guard import gpus
from dino_guard.check.engine import Options, check_loaded
from dino_guard.check.report import FORMATTERS
from dino_guard.memory.estimate import MethodUnavailable, run
from dino_guard.memory.spec import spec_from_setup
from dino_guard.schemas import Setup
from dino_guard.setupfile.loader import parse_text, validate_document
from dino_guard.setupfile.yamlpos import Document
from tests.hostile.cases import BASE

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.dino.yaml"))
BUDGET = settings(max_examples=150, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HOSTILE_INTS = st.sampled_from([0, 1, -1, 3, 7, 96, 224, 2**31, 2**63 - 1, 2**63, 10**18, 1_000_000_007, -(2**63) - 1])
HOSTILE_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1e-300, 1e300, 0.07, 1.0, 0.5])
HOSTILE_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF),
                       max_size=20) | st.sampled_from(
    ["vit_small_patch16_224", "resnet50", "torchvision/resnet18", "H100-80GB", "A100", "H100-0GB", "\x1b[2J", "/proc",
     "2024-11-31", "shapes", "dino", "none", "device", "cpu", "bf16", "fp16", "sgd"])
ANY_SCALAR = st.none() | st.booleans() | HOSTILE_INTS | st.integers() | HOSTILE_FLOATS | HOSTILE_TEXT


def _value_for(annotation, extreme: bool) -> st.SearchStrategy:
    """A plausible value of the field's type most of the time; a hostile one of its type, or anything, otherwise.

    extreme: only values of the field's own type, at the edges of their range (a valid setup, absurd numbers).
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        return st.one_of(*[_value_for(a, extreme) for a in args if a is not type(None)], st.none())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _section(annotation, extreme) if extreme else _mostly(_section(annotation, extreme), ANY_SCALAR)
    plausible, hostile = _plausible_and_hostile(annotation, origin, args, extreme)
    return plausible if extreme else _mostly(plausible, hostile | ANY_SCALAR)


EXTREME_INTS = st.sampled_from([1, 2, 3, 7, 64, 1000, 1_000_000_007, 10**18, 2**63 - 1]) | st.integers(1, 2**63 - 1)
EXTREME_FLOATS = st.sampled_from([1e-300, 1e-6, 0.04, 0.5, 0.996, 1.0]) | st.floats(0.0, 1.0)
BACKBONES = st.sampled_from(["vit_small_patch16_224", "vit_base_patch16_224", "resnet18", "resnet50", "test_vit",
                             "torchvision/resnet18", "vit_tiny_patch16_224"])


def _plausible_and_hostile(annotation, origin, args, extreme: bool) -> tuple:
    if origin is typing.Literal:
        return st.sampled_from(args), HOSTILE_TEXT
    if origin is tuple:
        return (st.lists(EXTREME_FLOATS if extreme else st.floats(0.01, 1.0), min_size=len(args),
                         max_size=len(args)).map(sorted), st.lists(HOSTILE_FLOATS, max_size=len(args) + 1))
    if annotation is bool:
        return st.booleans(), HOSTILE_TEXT
    if annotation is int:
        return EXTREME_INTS if extreme else st.integers(1, 4096), HOSTILE_INTS | st.integers()
    if annotation is float:
        return EXTREME_FLOATS if extreme else st.floats(0.001, 1.0), HOSTILE_FLOATS
    return (st.sampled_from(["runs/x", "H100-80GB", "A100-40GB"]) if extreme else HOSTILE_TEXT), HOSTILE_TEXT


def _mostly(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` 12 times in 13 (one_of would pick each branch equally often)."""
    return st.integers(0, 12).flatmap(lambda pick: rare if pick == 0 else usual)


def _section(model: type, extreme: bool = False) -> st.SearchStrategy:
    fields = {name: _value_for(info.annotation, extreme) for name, info in model.model_fields.items()
              if not (extreme and name == "path")}  # extreme setups never point at the file system
    optional = st.fixed_dictionaries({}, optional=fields)
    if model is Setup:  # a backbone most of the time, or no rule runs
        names = BACKBONES if extreme else BACKBONES | HOSTILE_TEXT
        backbone = st.fixed_dictionaries({"name": names}, optional={"dynamic_img_size": st.booleans()})
        return st.builds(lambda d, b: {**d, "model": {**(d.get("model") or {}), "backbone": b}}
                         if isinstance(d.get("model"), (dict, type(None))) else d, optional, backbone)
    return optional


def check_everything(doc: Document, suffix: str = ".dino.yaml") -> None:
    """Load, check, format and (when valid) estimate: what `check` and `estimate` do with one file."""
    loaded = validate_document("x" + suffix, doc)
    findings = check_loaded(loaded, Options(count_images=False))
    for gpu in (None, "H100-80GB"):
        findings += check_loaded(loaded, Options(count_images=False, gpu=gpu))
    for format_findings in FORMATTERS.values():
        format_findings(findings, 1).encode("utf-8")
    if loaded.setup is not None and loaded.setup.has_dino_transform:
        _estimate(loaded.setup)


def _estimate(setup) -> None:
    try:
        card = gpus.for_setup(setup) or gpus.resolve("H100-80GB")
    except gpus.GpuError:
        return  # DG603 reports it; estimate exits 2 with the same message
    try:
        result = run(spec_from_setup(setup), "analytic", card, setup.train.accumulate_grad_batches)
    except MethodUnavailable:
        return
    json.dumps(result.to_json())


@BUDGET
@given(_section(Setup))
def test_any_setup_data_checks_without_an_exception(data):
    check_everything(Document(data=data))


@BUDGET
@given(_section(Setup, extreme=True))
def test_valid_setups_with_extreme_numbers_check_and_estimate_without_an_exception(data):
    check_everything(Document(data=data))


# --- text mutations of real setups ----------------------------------------------------------

SEEDS = [path.read_text(encoding="utf-8") for path in EXAMPLES] + [BASE]
TOML_SEED = """\
[data]
dataset_size = 100000
[transform]
global_crop_size = 224
local_crop_size = 96
n_local_views = 6
[model.backbone]
name = "vit_small_patch16_224"
[model.head]
output_dim = 4096
[train]
batch_size = 64
[hardware]
gpu = "H100-80GB"
"""
JSON_SEED = json.dumps({"model": {"backbone": {"name": "resnet18"}, "head": {"output_dim": 2048}},
                        "transform": {"n_local_views": 6}, "train": {"batch_size": 64},
                        "hardware": {"gpu": "A100-40GB"}})
HOSTILE_PIECES = st.sampled_from(
    ["{", "}", "[", "]", ":", ",", "&a", "*a", "!!float", "!!bool", "!!int", "!!binary", "!!python/object:os.system",
     "? ", "- ", "|", ">", "%", "@", "`", '"', "'", "\\", "\n", "\t", "#", "\x00", "\x1b[2J", "\ud800", "\\ud800", "~",
     "null", "true", "Model", "x[y]", "1e400", ".inf", ".nan", "0x", "2024-11-31", "9" * 5000, "=", "[[", "]]",
     "<<: *a", "---\n"])


@st.composite
def mutated(draw, seeds: list) -> str:
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif action == "duplicate":
            text = text[:at] + text[at:at + 200] + text[at:]
        else:
            piece = draw(HOSTILE_PIECES | st.text(max_size=5))
            text = text[:at] + piece + text[at + (draw(st.integers(1, 10)) if action == "replace" else 0):]
    return text


@BUDGET
@given(mutated(SEEDS))
def test_mutated_yaml_checks_without_an_exception(text):
    check_everything(parse_text(text, ".yaml"))


@BUDGET
@given(mutated([TOML_SEED]))
def test_mutated_toml_checks_without_an_exception(text):
    check_everything(parse_text(text, ".toml"), ".dino.toml")


@BUDGET
@given(mutated([JSON_SEED]))
def test_mutated_json_checks_without_an_exception(text):
    check_everything(parse_text(text, ".json"), ".dino.json")
