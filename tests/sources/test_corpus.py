"""The realistic script corpus (issue 11): every script in tests/sources/corpus
carries its expectations inline, like the fixtures: `# expect: DGnnn` on the line
where the finding must be reported, one finding per source location. `good_*`
scripts expect no error and no warning; info findings are ignored unless expected.

A corpus script may need a folder at check time (ImageFolder rules):
`# corpus-folder: data/x flat` makes data/x with images and no subfolders,
`# corpus-folder: data/x classes` makes data/x/cat and data/x/dog with images.
The script is checked from a temporary copy next to that folder, with the
working directory there too, so a relative path means the same either way.

Where the new rules' findings are expected (the line that shows the mistake):
DG710 the DINOLoss call (the `teacher_out=` line when keywords are used);
DG711 the `validation_step` line that reaches the update, or the loss call in
the no-grad loop; DG712 the `cosine_schedule` call; DG713 the optimizer's `lr=`;
DG714 the first `update_momentum` (where DG410/DG411 are reported); DG715 the
backbone's definition; DG716 the `ImageFolder(...)` call; DG717 the line that
computes the teacher outputs from the student, or the teacher's creation.

Scripts the current reader gets wrong are listed in KNOWN_WRONG with the
reason; they run as strict xfails, so fixing the reader turns them into
failures until their entry is deleted.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from dino_guard.engine import Options
from dino_guard.findings import Severity
from dino_guard.inputs import check_path
from tests.sources.test_scripts import expectations

CORPUS = Path(__file__).parent / "corpus"
SCRIPTS = sorted(CORPUS.glob("*.py"))
FOLDER = re.compile(r"#\s*corpus-folder:\s*(\S+)\s+(flat|classes)\s*$")
# the JPEG bytes do not matter: nothing decodes them at check time
IMAGE_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64

KNOWN_WRONG: dict[str, str] = {
    # class 1: a container filled by a loop is read as empty
    "good_views_built_in_loop.py": "views appended in a loop read as empty: false DG705 '0 teacher and 0 student views'",
    # class 2: alternatives read as one value / placeholder printed
    "good_try_except_model_loading.py": "try/except backbone: false DG202 error naming the placeholder 'the script's backbone'",
    "bad_config_branches_agree_on_wrong_dim.py": "if/else ResNet-18/34 (both 512): DG202 with the placeholder name instead of DG201",
    # class 3: library semantics
    "good_lightning_max_steps_no_epoch_limit.py": "Trainer(max_epochs=-1, max_steps=...) read as invalid: false DG003 error",
    "bad_lightning_max_steps_loss_dim.py": "the DG401 is found, plus a false DG003 for Trainer(max_epochs=-1)",
    "good_online_classifier_in_validation_step.py": "false DG703 error: the teacher's forward in validation_step runs without gradients (Lightning), in training_step under no_grad",
    # class 4: which loop trains
    "bad_eval_loop_hides_short_run.py": "the 100-pass no-grad evaluation loop is taken as the training length: DG706 stays silent",
    # class 5: one mistake, one finding
    "bad_momentum_swapped_in_shared_helper.py": "DG702 reported three times on the helper's one line",
    # class 6: several models in one file
    "bad_benchmark_dino_momentum_decreasing.py": "MSN's fixed 0.996 merged into the DINO teacher's momentum: DG410 silent",
    # LightlyTrain calls are not read yet
    "bad_lightly_train_crop_not_divisible.py": "lightly_train.train(transform_args=...) not read: no DG301",
    # new rules, not implemented yet
    "bad_loss_args_swapped_plain_loop.py": "DG710 loss-args-swapped not implemented",
    "bad_loss_args_swapped_keywords_lightning.py": "DG710 loss-args-swapped not implemented",
    "bad_teacher_updated_in_validation_step.py": "DG711 teacher-updated-in-eval not implemented",
    "bad_loss_forward_in_no_grad_eval_loop.py": "DG711 teacher-updated-in-eval not implemented",
    "bad_momentum_schedule_ten_of_hundred_epochs.py": "DG712 momentum-schedule-shorter-than-run not implemented",
    "bad_momentum_schedule_one_epoch_of_steps.py": "DG712 momentum-schedule-shorter-than-run not implemented",
    "bad_lr_linear_scaling_too_high.py": "DG713 lr-scaled-too-high not implemented",
    "bad_tiny_batch_vit_from_scratch.py": "DG714 tiny-batch-large-momentum not implemented",
    "bad_vgg_features_into_head.py": "DG715 backbone-output-not-flat not implemented",
    "bad_imagefolder_without_classes.py": "DG716 imagefolder-without-classes not implemented",
    "bad_teacher_outputs_from_student.py": "DG717 teacher-never-updated not implemented",
    "bad_teacher_never_updated.py": "DG717 teacher-never-updated not implemented",
}


def make_folders(script: Path, root: Path) -> None:
    for line in script.read_text(encoding="utf-8").splitlines():
        if match := FOLDER.search(line):
            folder = root / match.group(1)
            targets = [folder] if match.group(2) == "flat" else [folder / "cat", folder / "dog"]
            for target in targets:
                target.mkdir(parents=True)
                for i in range(3):
                    (target / f"img_{i}.jpg").write_bytes(IMAGE_BYTES)


def found(script: Path, tmp_path: Path, monkeypatch) -> tuple[Counter, list]:
    """Findings of `dino-guard check` on a copy of the script, as (line, code) counts."""
    copy = tmp_path / script.name
    shutil.copyfile(script, copy)
    make_folders(script, tmp_path)
    monkeypatch.chdir(tmp_path)
    findings = check_path(copy, Options(count_images=False))
    return Counter((f.line, f.code) for f in findings), findings


def _param(path: Path):
    reason = KNOWN_WRONG.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in SCRIPTS])
def test_corpus_script_reports_exactly_what_it_expects(path: Path, tmp_path: Path, monkeypatch):
    expected = expectations(path)
    counts, findings = found(path, tmp_path, monkeypatch)
    shown = Counter({
        key: n for key, n in counts.items()
        if any(f.severity != Severity.INFO for f in findings if (f.line, f.code) == key) or key in expected
    })
    report = "\n".join(f"{f.line}:{f.column} {f.code} {f.severity.value} {f.message}" for f in findings)
    assert shown == Counter(expected), report
    if path.name.startswith("good"):
        assert not [f for f in findings if f.severity == Severity.ERROR], report


def test_corpus_covers_every_style_and_new_rule():
    names = [p.name for p in SCRIPTS]
    assert len(names) >= 40
    assert sum(n.startswith("good") for n in names) >= 15
    codes = {code for p in SCRIPTS for _, code in expectations(p)}
    assert {"DG710", "DG711", "DG712", "DG713", "DG714", "DG715", "DG716", "DG717"} <= codes
    for path in SCRIPTS:
        if path.name.startswith("bad"):
            assert len(expectations(path)) == 1, f"{path.name}: a broken corpus script holds exactly one mistake"


def test_known_wrong_names_exist():
    assert set(KNOWN_WRONG) <= {p.name for p in SCRIPTS}
