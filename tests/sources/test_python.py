"""load_python: what a script determines, where, and what it leaves unknown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dino_guard.check.engine import Options, check_loaded
from dino_guard.findings import UnreadableInput
from dino_guard.sources import prefilter
from dino_guard.sources.interp import evaluator
from dino_guard.sources.python import load_python

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]

HEAD_SCRIPT = """\
import timm
from lightly.models.modules import DINOProjectionHead
from lightly.loss import DINOLoss

WIDTH = 2048
vit = timm.create_model("vit_small_patch16_224", dynamic_img_size=True)
head = DINOProjectionHead(WIDTH, output_dim=4096)
criterion = DINOLoss(output_dim=4096)
"""


@pytest.fixture
def script(tmp_path):
    def write(text: str, name: str = "train.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


def codes(path: Path) -> list:
    return [(f.line, f.column, f.code) for f in check_loaded(load_python(path), Options(count_images=False))]


def test_a_file_without_lightly_is_skipped(script):
    loaded = load_python(script("import torch\nprint('DINOProjectionHead')\n"))
    assert loaded.setup is None and loaded.findings == [] and loaded.known == frozenset()


@pytest.mark.parametrize("line, expected", [
    (b"import torch, lightly\n", True), (b"    from lightly.loss import DINOLoss\n", True),
    (b"import lightly.data as ld\n", True), (b"# see lightly's docs\nimport torch\n", False),
    (b"import lightly_extra\n", False), (b"x = 'lightly'\n", False),
    (b"import lightly_train\n", True), (b"from lightly_train import train\n", True),
])
def test_prefilter(line, expected):
    assert prefilter.may_import_lightly(line) is expected


def test_positions_point_at_the_argument(script):
    path = script(HEAD_SCRIPT)
    loaded = load_python(path)
    assert loaded.setup.model.head.input_dim == 2048
    assert loaded.locations.of("model.head.input_dim") == (7, 27)  # the WIDTH argument
    assert loaded.locations.of("model.backbone.name") == (6, 25)
    assert (7, 27, "DG201") in codes(path)


def test_defaults_point_at_the_call(script):
    path = script(HEAD_SCRIPT.replace("DINOProjectionHead(WIDTH, output_dim=4096)", "DINOProjectionHead()"))
    loaded = load_python(path)
    assert loaded.setup.model.head.input_dim == 2048 and loaded.setup.model.head.output_dim == 65536
    assert loaded.locations.of("model.head.input_dim") == (7, 8)
    assert {c for _, _, c in codes(path)} == {"DG201", "DG401"}


def test_unknown_values_stay_unknown(script):
    path = script(HEAD_SCRIPT.replace("WIDTH = 2048", "import sys\nWIDTH = int(sys.argv[1])"))
    loaded = load_python(path)
    assert "model.head.input_dim" not in loaded.known
    assert "DG201" not in {c for _, _, c in codes(path)}


def test_branches_that_disagree_make_a_value_unknown(script):
    path = script(HEAD_SCRIPT.replace("WIDTH = 2048",
                                      "import os\nif os.environ.get('BIG'):\n    WIDTH = 768\nelse:\n    WIDTH = 384"))
    assert "model.head.input_dim" not in load_python(path).known


def test_a_constant_branch_is_followed(script):
    path = script(HEAD_SCRIPT.replace("WIDTH = 2048",
                                      "USE_VIT = True\nif USE_VIT:\n    WIDTH = 384\nelse:\n    WIDTH = 2048"))
    loaded = load_python(path)
    assert loaded.setup.model.head.input_dim == 384 and "model.head.input_dim" in loaded.known


def test_a_value_the_schema_refuses_is_reported_and_dropped(script):
    path = script(HEAD_SCRIPT.replace("DINOProjectionHead(WIDTH, output_dim=4096)",
                                      "DINOProjectionHead(0, output_dim=4096)"))
    loaded = load_python(path)
    assert [(f.code, f.line, f.field) for f in loaded.findings] == [("DG003", 7, "model.head.input_dim")]
    assert loaded.setup is not None and "model.head.input_dim" not in loaded.known


def test_too_complex_scripts_say_so(script, monkeypatch):
    monkeypatch.setattr(evaluator, "MAX_STEPS", 10)
    loaded = load_python(script(HEAD_SCRIPT))
    assert [f.code for f in loaded.findings] == ["DG709"] and loaded.setup is None


def test_removed_api_gets_the_same_verdict_without_lightly_installed(script, monkeypatch):
    """The pre-commit hook's environment has no lightly: the verdict must not change (DG707, an error)."""
    import importlib.metadata
    import importlib.util

    real_find_spec, real_version = importlib.util.find_spec, importlib.metadata.version

    def no_lightly(name, *args, **kwargs):
        if name.split(".")[0] == "lightly":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("lightly") else real_find_spec(name, *a))
    monkeypatch.setattr(importlib.metadata, "version", no_lightly)
    loaded = load_python(script("from lightly.data import DINOCollateFunction\n"))
    assert [(f.code, f.line) for f in loaded.findings] == [("DG707", 1)]
    assert "lightly 1.6.0" in loaded.findings[0].message


def test_a_pinned_old_lightly_is_judged_against_its_own_release():
    folder = Path(__file__).parent / "fixtures" / "pinned_lightly_1_4"
    assert load_python(folder / "train_old_collate.py").findings == []


def test_an_unpinned_old_api_names_the_release_it_was_judged_against(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("from lightly.data import DINOCollateFunction\n")
    [finding] = load_python(path).findings
    assert finding.code == "DG707"
    assert finding.message == ("lightly.data.DINOCollateFunction does not exist in lightly 1.6.0 (the newest release "
                               "dino-guard knows; no lightly pin next to or above the script)")


def test_a_pin_between_described_releases_warns_only_when_they_disagree(tmp_path):
    (tmp_path / "requirements.txt").write_text("lightly==1.5.10\n")
    path = tmp_path / "train.py"
    # added between 1.5.0 and 1.5.22
    path.write_text("from lightly.models.modules import MaskedVisionTransformerTIMM\n")
    [finding] = load_python(path).findings
    assert finding.code == "DG708" and "absent from lightly 1.5.0" in finding.message


def test_a_folder_is_unreadable(tmp_path):
    with pytest.raises(UnreadableInput):
        load_python(tmp_path)


def test_check_path_imports_no_heavy_module():
    code = ("import sys\nfrom pathlib import Path\nfrom dino_guard.check.engine import check_loaded\n"
            "from dino_guard.sources.python import load_python\n"
            f"for p in sorted(Path({str(FIXTURES)!r}).glob('*.py')): check_loaded(load_python(p))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'lightly', 'torchvision')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_gpu_memory_rules_run_on_a_determined_script(cli):
    path = FIXTURES / "good_class_trainer.py"
    result = cli("check", "--gpu", "T4", "--format", "json", path)
    import json

    findings = json.loads(result.output)
    found = [(f["code"], f["line"], f["field"]) for f in findings]
    # at the default that holds the batch (`def __init__(..., batch_size=48, ...)`), the DataLoader call related
    assert ("DG601", 23, "train.batch_size") in found
    (dg601,) = [f for f in findings if f["code"] == "DG601"]
    assert [r["line"] for r in dg601["related"]] == [31]
    assert result.exit_code == 1


def test_torchrun_scripts_leave_the_device_count_open(script):
    text = (FIXTURES / "good_functions.py").read_text().replace(
        "import torch\n", "import torch\nfrom torch.nn.parallel import DistributedDataParallel\n", 1)
    loaded = load_python(script(text))
    assert "train.batch_size" in loaded.known and "train" not in loaded.known


def test_the_same_attribute_name_in_two_classes_is_two_bindings(script):
    path = script("""\
        import copy, torch
        from lightly.models.modules import DINOProjectionHead

        class Broken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.student = DINOProjectionHead(384)
                self.teacher = self.student

        class Fine(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.student = DINOProjectionHead(384)
                self.teacher = DINOProjectionHead(384)

        a, b = Broken(), Fine()
    """)
    assert [(line, code) for line, _, code in codes(path)] == [(8, "DG701")]


def test_ema_over_state_dict_values_counts_as_a_teacher_update_not_dg717():
    import ast

    from dino_guard.sources.library.methods import state_dict_ema

    assert state_dict_ema(ast.parse("for k, v in t.state_dict().items():\n    v.mul_(m).add_(s.state_dict()[k])\n"))
    assert state_dict_ema(ast.parse("t.load_state_dict({k: m * v + s[k] for k, v in t.state_dict().items()})\n"))
    # reading or saving a state dict, or copying one over, is no EMA
    assert not state_dict_ema(ast.parse("for k, v in t.state_dict().items():\n    print(k)\n"
                                        "torch.save({k: v.cpu() for k, v in t.state_dict().items()}, 'x')\n"
                                        "t.load_state_dict(s.state_dict())\n"))
