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

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.findings import Severity
from tests.helpers import expectations

CORPUS = Path(__file__).parent / "corpus"
SCRIPTS = sorted(CORPUS.glob("*.py"))
FOLDER = re.compile(r"#\s*corpus-folder:\s*(\S+)\s+(flat|classes)\s*$")
# the JPEG bytes do not matter: nothing decodes them at check time
IMAGE_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64

KNOWN_WRONG: dict[str, str] = {}  # every corpus case passes (issue 11); add "name.py": "reason" for a new gap


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
            # one mistake, reported at each call that makes it (the student's head and the teacher's copy)
            assert len({code for _, code in expectations(path)}) == 1, \
                f"{path.name}: a broken corpus script holds exactly one mistake"


def test_known_wrong_names_exist():
    assert set(KNOWN_WRONG) <= {p.name for p in SCRIPTS}
