"""One test per bug the hostile-input battery found, in-process and named after the bug."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dino_guard import gpus
from dino_guard.check import inputs
from dino_guard.check.engine import check_loaded
from dino_guard.check.report import format_github, format_text
from dino_guard.findings import Finding, Severity, UnreadableInput
from dino_guard.memory import fit
from dino_guard.memory.estimate import traced_too_costly
from dino_guard.memory.spec import MemorySpec
from dino_guard.schemas.export import markdown_reference
from dino_guard.setupfile.loader import load_setup, read_bounded
from dino_guard.sources.python import load_python
from tests.hostile.cases import BASE, setup_with


def codes(loaded) -> list:
    return [f.code for f in loaded.findings]


# --- the YAML / TOML readers --------------------------------------------------------------

@pytest.mark.parametrize("name, text", [
    ("x.dino.yaml", setup_with(train="{batch_size: 1%s}" % ("0" * 5000))),
    ("x.dino.toml", '[model.backbone]\nname = "resnet18"\n[train]\nepochs = 1%s\n' % ("0" * 5000)),
])
def test_integer_beyond_pythons_digit_limit_is_a_finding_not_a_valueerror(write_setup, name, text):
    loaded = load_setup(write_setup(text, name))
    assert loaded.setup is None and codes(loaded) in (["DG003"], ["DG001"])
    assert "digits" in loaded.findings[0].message


@pytest.mark.parametrize("value, says", [
    ("!!float abc", "not a valid float"),
    ("!!bool maybe", "not a valid bool"),
    ("!!int 0x", "not a valid int"),
    ("2024-11-31", "day is out of range"),
    ("!!timestamp 2024-13-45", "month must be in 1..12"),
])
def test_bad_explicit_tag_or_impossible_date_is_dg003_at_its_field(write_setup, value, says):
    loaded = load_setup(write_setup(setup_with(train=f"{{output_dir: {value}}}")))
    (finding,) = loaded.findings  # the schema does not report the same value again
    assert finding.code == "DG003" and finding.field == "train.output_dir" and says in finding.message
    assert "quote it" in finding.help


@pytest.mark.parametrize("text, message", [
    (BASE.replace("model:", "Model:"), "unknown key 'Model' in the top level"),
    (BASE + "None: 1\n", "unknown key 'None' in the top level"),
    (BASE + "null: 1\n", "unknown key 'null' in the top level"),
    (BASE + "true: 1\n", "unknown key 'true' in the top level"),
    (BASE + "x[y]: 1\n", "unknown key 'x[y]' in the top level"),
    (BASE.replace("dynamic_img_size", "Dynamic_img_size"), "unknown key 'Dynamic_img_size' in model.backbone"),
])
def test_key_as_written_is_never_taken_for_a_pydantic_union_tag(write_setup, text, message):
    loaded = load_setup(write_setup(text))
    assert [f.message for f in loaded.findings if f.code == "DG002"] == [message]


def test_empty_or_null_key_is_a_bad_key_finding(write_setup):
    loaded = load_setup(write_setup(BASE + "?\n: x\n"))
    assert codes(loaded) == ["DG003"] and "plain name" in loaded.findings[0].message


def test_deeply_nested_toml_is_dg007_not_a_recursionerror(write_setup):
    loaded = load_setup(write_setup("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "x.dino.toml"))
    assert codes(loaded) == ["DG007"]


# --- files: never opened unless regular, never read past the limit ---------------------------

def test_fifo_setup_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.dino.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableInput, match="not a regular file .a FIFO."):
        load_setup(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_behind_a_setup_name_is_refused_before_reading(tmp_path, device):
    link = tmp_path / "x.dino.yaml"
    link.symlink_to(device)
    with pytest.raises(UnreadableInput, match="a character device"):
        load_setup(link)


def test_size_limit_is_enforced_while_reading_not_only_from_stat():
    # /proc files report st_size 0 and hold more: the read itself must stop at the limit
    with pytest.raises(UnreadableInput, match="more than 0 KB is far too large"):
        read_bounded(Path("/proc/self/maps"), 10, "a setup file", "")


def test_unlistable_subfolder_is_reported_not_silently_skipped(tmp_path, monkeypatch):
    (tmp_path / "ok.dino.yaml").write_text(BASE)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir, real_listdir = os.scandir, os.listdir

    def deny(path, real):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", lambda path=".": deny(path, real_scandir))
    monkeypatch.setattr(os, "listdir", lambda path=".": deny(path, real_listdir))
    found = list(inputs.expand([str(tmp_path)]))
    assert found == [tmp_path / "ok.dino.yaml", locked]
    with pytest.raises(UnreadableInput, match="folder cannot be read .Permission denied."):
        inputs.load(locked)


def test_symlink_loop_says_why_it_cannot_be_read(tmp_path):
    (tmp_path / "a.dino.yaml").symlink_to(tmp_path / "b.dino.yaml")
    (tmp_path / "b.dino.yaml").symlink_to(tmp_path / "a.dino.yaml")
    with pytest.raises(UnreadableInput, match="symbolic links"):
        load_setup(tmp_path / "a.dino.yaml")


def test_lightly_script_over_the_size_limit_is_a_dg709_warning_not_all_checks_passed(tmp_path, monkeypatch):
    monkeypatch.setattr("dino_guard.sources.python.MAX_BYTES", 100)
    script = tmp_path / "train.py"
    script.write_text("from lightly.loss import DINOLoss\n" + "x = 1\n" * 100)
    (finding,) = load_python(script).findings
    assert finding.code == "DG709" and finding.severity == Severity.WARNING and "larger than" in finding.message


def test_large_python_file_without_lightly_is_still_skipped_silently(tmp_path, monkeypatch):
    monkeypatch.setattr("dino_guard.sources.python.MAX_BYTES", 100)
    data = tmp_path / "table.py"
    data.write_text("x = 1\n" * 100)
    assert load_python(data).findings == []


# --- numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("section, field", [
    ("hardware={gpu_memory_gb: .inf}", "hardware.gpu_memory_gb"),
    ("hardware={gpu_memory_gb: 1e400}", "hardware.gpu_memory_gb"),
    ("hardware={gpu_memory_gb: 1e300}", "hardware.gpu_memory_gb"),
    ("optimizer={lr: .nan}", "optimizer.lr"),
    ("train={seed: 18446744073709551616}", "train.seed"),
    ("train={seed: -1}", "train.seed"),
    (f"train={{batch_size: {2**63}}}", "train.batch_size"),
])
def test_non_finite_and_out_of_range_numbers_are_refused_by_the_schema(write_setup, section, field):
    name, value = section.split("=", 1)
    loaded = load_setup(write_setup(setup_with(**{name: value})))
    assert [(f.code, f.field) for f in loaded.findings] == [("DG003", field)]


def test_dataset_smaller_than_one_batch_no_longer_divides_by_zero_in_dg416(write_setup):
    loaded = load_setup(write_setup(setup_with(data="{dataset_size: 3}")))
    found = [f.code for f in check_loaded(loaded)]
    assert "DG416" not in found and "DG417" in found  # the real mistake: no optimizer step at all


def test_batch_plan_for_a_batch_of_10_pow_18_is_instant():
    start = time.perf_counter()
    plan = fit.plan(10**18, 1, 687)
    assert time.perf_counter() - start < 1.0
    assert plan == fit.BatchPlan(640, 1_562_500_000_000_000, True)  # 640 = 2^7 x 5 divides 10^18; 687 / 2 <= 640


def test_batch_plan_for_a_prime_batch_rounds_up_instead_of_searching():
    assert fit.plan(1_000_000_007, 1, 687) == fit.BatchPlan(687, 1_455_605, False)


def test_max_batch_search_from_a_batch_of_2_pow_62_takes_few_evaluations():
    calls = []

    def peak(batch: int) -> int:
        calls.append(batch)
        return 10**9 + batch * 10**8

    assert fit.max_batch_size(peak, 70 * 2**30, known=(2**62, peak(2**62))) == 741
    assert len(calls) < 30


def test_traced_estimate_of_100000_views_is_refused_before_tracing():
    assert traced_too_costly(MemorySpec("vit_small_patch16_224", 64, n_local_views=100_000))
    assert traced_too_costly(MemorySpec("vit_small_patch16_224", 64, n_local_views=10)) is None


def test_traced_estimate_of_100000_views_falls_back_to_analytic_with_a_note(cli, write_setup):
    result = cli("estimate", "--method", "traced", "--format", "json",
                 write_setup(setup_with(transform="{n_local_views: 100000}")))
    assert "estimated with the analytic method instead" in result.output
    assert '"method": "analytic"' in result.output


def test_gpu_named_with_0gb_does_not_resolve_to_the_80gb_card():
    with pytest.raises(gpus.GpuError, match="unknown GPU 'H100-0GB'"):
        gpus.resolve("H100-0GB")
    assert gpus.resolve("H100 80GB").name == "H100-80GB"


# --- commands -----------------------------------------------------------------------------

def test_train_given_a_python_script_says_train_takes_a_setup_file(cli, tmp_path):
    script = tmp_path / "script.py"
    script.write_text("from lightly.loss import DINOLoss\n")
    result = cli("train", script)
    assert result.exit_code == 2 and "train takes a setup file" in result.output


@pytest.mark.parametrize("text, says", [
    ("[tool.dino-guard]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ("[tool.dino-guard]\nx = 1%s\n" % ("0" * 5000), "Exceeds the limit (4300 digits)"),
])
def test_hostile_pyproject_is_a_usage_error_not_a_traceback(cli, tmp_path, monkeypatch, text, says):
    (tmp_path / "pyproject.toml").write_text(text)
    (tmp_path / "x.dino.yaml").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    result = cli("check", "x.dino.yaml")
    assert result.exit_code == 2 and says in result.output


# --- output -------------------------------------------------------------------------------

def _finding(path: str, message: str) -> Finding:
    return Finding(path, 3, 5, "DG401", "loss-output-dim-mismatch", Severity.ERROR, message, "fix, then 100%")


def test_github_annotation_escapes_file_and_title_properties_against_injection():
    line = format_github([_finding("a\n::stop-commands::x,y:z.dino.yaml", "50%\r\nvalue")], 1)
    assert line.count("\n") == 0
    assert line.startswith("::error file=a%0A%3A%3Astop-commands%3A%3Ax%2Cy%3Az.dino.yaml,line=3,col=5,"
                           "title=DG401 loss-output-dim-mismatch::50%25%0D%0Avalue (help: fix, then 100%25)")


def test_text_output_prints_ansi_escapes_and_carriage_returns_from_setups_escaped():
    text = format_text([_finding("\x1b[2Jx.dino.yaml", "name '\x1b]0;pwned\x07\rAll checks passed'")], 1)
    assert "\x1b[2J" not in text and "\r" not in text and "\x07" not in text
    assert "\\x1b[2Jx.dino.yaml" in text and "\\rAll checks passed" in text


def test_text_output_of_a_lone_surrogate_can_be_encoded():
    text = format_text([_finding("a\udcff.dino.yaml", "unknown key '\ud800'")], 1)
    text.encode("utf-8")  # printing used to raise UnicodeEncodeError
    assert "\\udcff" in text and "\\ud800" in text


def test_markdown_reference_escapes_pipes_in_types():
    row = next(line for line in markdown_reference().splitlines() if line.startswith("| `train.precision`"))
    assert row == ("| `train.precision` | fp32 \\| bf16 \\| fp16 | `\"bf16\"` | "
                   "bf16/fp16: autocast mixed precision (fp16 with a GradScaler). |")
    assert row.replace("\\|", "").count("|") == 5  # four cells


def test_unreadable_data_file_is_not_blamed_on_the_output_folder():
    from dino_guard.commands.train import os_error_advice

    in_data = PermissionError(13, "Permission denied", "/proc/1/cwd")
    assert os_error_advice(in_data, Path("runs/x"), "/proc") == (
        "/proc/1/cwd: Permission denied; data.path (/proc) must be a folder of images this user can read")
    in_output = PermissionError(13, "Permission denied", "runs/x/metrics.jsonl")
    assert os_error_advice(in_output, Path("runs/x"), "/proc").endswith(
        "choose a writable train.output_dir (or --output-dir)")


def test_estimate_batch_size_option_beyond_64_bits_is_a_usage_error_not_an_overflow(cli, write_setup):
    result = cli("estimate", "--method", "analytic", "--batch-size", 10**400, write_setup(BASE))
    assert result.exit_code == 2 and "is not in the range 1<=x<=9223372036854775807" in result.output


def test_unreadable_pyproject_is_a_usage_error_not_a_permissionerror(cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.dino-guard]\n")
    (tmp_path / "x.dino.yaml").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    real_open = os.open

    def deny(path, *args, **kwargs):  # tests run as root: chmod 000 would not stop the read
        if os.fspath(path).endswith("pyproject.toml"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    result = cli("check", "x.dino.yaml")
    assert result.exit_code == 2 and "pyproject.toml: cannot be read (Permission denied)" in result.output


@pytest.mark.parametrize("gb", [float("inf"), float("nan"), 1e300, 0.0])
def test_gpu_from_memory_gb_refuses_non_finite_and_absurd_sizes_instead_of_overflowing(gb):
    with pytest.raises(gpus.GpuError, match="at most 100000"):
        gpus.from_memory_gb(gb)


@pytest.mark.parametrize("train, says", [
    ("{batch_size: 64, devices: 2}", "use batch_size: 1 or less"),
    ("{batch_size: 64, accumulate_grad_batches: 8}", "cannot fill 8 micro-batches even at batch_size: 1"),
])
def test_dg417_suggests_a_batch_that_takes_a_step(write_setup, train, says):
    loaded = load_setup(write_setup(setup_with(data="{dataset_size: 3}", train=train)))
    (finding,) = [f for f in check_loaded(loaded) if f.code == "DG417"]
    assert says in finding.help
