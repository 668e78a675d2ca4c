"""`dino-guard rescale`: the paper's recipe on one T4, every change explained, bad input in one line."""

from __future__ import annotations

import json
import re

import pytest
import tomlkit

from dino_guard.plan import lr_used, scaled_momentum
from dino_guard.setupfile.loader import load_setup
from tests.helpers import EXAMPLES

PAPER = EXAMPLES / "dino_paper_vits16_16gpu.dino.yaml"
CHANGE = re.compile(r"^  (?P<field>[a-z_.]+(?: used)?): (?P<old>\S+) -> (?P<new>\S+)$", re.M)


def _rescale(cli, tmp_path, *extra, source=PAPER, name="out.dino.yaml"):
    out = tmp_path / name
    result = cli("rescale", source, "--gpus", "1xT4-16GB", "--dataset-size", "20000", "--output", out, *extra)
    return result, out


def test_paper_recipe_on_one_t4_checks_clean_and_explains_each_change(cli, tmp_path):
    result, out = _rescale(cli, tmp_path)
    assert result.exit_code == 0, result.output
    assert "checks clean on T4-16GB" in result.output
    changes = {m["field"]: (m["old"], m["new"]) for m in CHANGE.finditer(result.output)}
    setup = load_setup(out).setup
    batch = setup.train.batch_size * setup.train.accumulate_grad_batches
    assert changes["train.batch_size"] == ("64", str(setup.train.batch_size))
    assert changes["train.devices"] == ("8", "1") and changes["train.num_nodes"] == ("2", "1")
    assert setup.teacher_momentum.start == round(scaled_momentum(0.996, 1024, batch), 6)
    assert changes["teacher_momentum.start"] == ("0.996", f"{setup.teacher_momentum.start:g}")
    assert setup.model.head.output_dim == setup.loss.output_dim == 4096
    assert changes["lr used"] == ("0.002", f"{round(lr_used(0.0005, batch), 8):g}")
    assert setup.optimizer.lr == 0.0005  # the base rate per 256 is the recipe's; the plan scales it
    # every changed line is explained, with its source in brackets
    lines = result.output.splitlines()
    for i, line in enumerate(lines):
        if CHANGE.match(line):
            assert lines[i + 1].startswith("      ") and lines[i + 1].rstrip().endswith("]"), lines[i + 1]


def test_comments_and_untouched_lines_are_kept(cli, tmp_path):
    _, out = _rescale(cli, tmp_path)
    source, rescaled = PAPER.read_text().splitlines(), out.read_text().splitlines()
    assert len(source) == len(rescaled)
    assert [line.partition("#")[2] for line in source] == [line.partition("#")[2] for line in rescaled]
    changed = [new for old, new in zip(source, rescaled, strict=True) if old != new]
    assert len(changed) == 8  # data, head, loss, momentum, batch, devices, nodes, hardware


def test_a_large_data_set_keeps_the_effective_batch_by_accumulation(cli, tmp_path):
    out = tmp_path / "out.dino.yaml"
    result = cli("rescale", PAPER, "--gpus", "2xT4-16GB", "--dataset-size", "1281167", "--output", out)
    assert result.exit_code == 0, result.output
    train = load_setup(out).setup.train
    assert train.batch_size * train.accumulate_grad_batches * train.devices == 1024
    assert "gradient accumulation keeps the recipe's effective batch 1024" in result.output
    assert "teacher_momentum" not in result.output and "lr used" not in result.output


def test_fewer_epochs_keep_the_warmups_share_of_the_run(cli, tmp_path):
    result, out = _rescale(cli, tmp_path, "--epochs", "50")
    setup = load_setup(out).setup
    assert (setup.train.epochs, setup.optimizer.warmup_epochs, setup.loss.warmup_teacher_temp_epochs) == (50, 5, 15)
    assert "optimizer.warmup_epochs: 10 -> 5" in result.output


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_toml_and_json_recipes_are_rescaled_in_their_format(cli, tmp_path, fmt):
    import yaml

    data = yaml.safe_load(PAPER.read_text())
    source = tmp_path / f"paper.dino.{fmt}"
    source.write_text(tomlkit.dumps(data) if fmt == "toml" else json.dumps(data, indent=2))
    result, out = _rescale(cli, tmp_path, source=source, name=f"out.dino.{fmt}")
    assert result.exit_code == 0, result.output
    assert load_setup(out).setup.model.head.output_dim == 4096


def test_dg411_advises_the_same_momentum_as_rescale(cli, tmp_path):
    """One EMA rule: rescale's momentum for the batch it chose is what DG411 would suggest from 0.996 at 1024."""
    _, out = _rescale(cli, tmp_path)
    setup = load_setup(out).setup
    text = out.read_text().replace(f"start: {setup.teacher_momentum.start:g}", "start: 0.99")
    worse = tmp_path / "worse.dino.yaml"
    worse.write_text(text)
    from dino_guard.check.engine import Options
    from dino_guard.check.inputs import check_path

    advice = [f for f in check_path(worse, Options(count_images=False)) if f.code == "DG411"]
    assert advice and advice[0].fix == {"teacher_momentum.start": round(setup.teacher_momentum.start, 4)}


@pytest.mark.parametrize("args, message", [
    (["--gpus", "1xT5-16GB"], "unknown GPU"),
    (["--dataset-size", "0"], "--dataset-size 0"),
    (["--output", "/nonexistent-dir/out.dino.yaml"], "cannot be written"),
    (["--output", "out.dino.toml"], "same format"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    base = {"--gpus": "1xT4-16GB", "--dataset-size": "20000", "--output": str(tmp_path / "out.dino.yaml")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = cli("rescale", PAPER, *[x for pair in base.items() for x in pair])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_file_that_does_not_parse_is_one_line_and_exit_2(cli, tmp_path):
    broken = tmp_path / "broken.dino.yaml"
    broken.write_text("model: {backbone: [\n")
    result = cli("rescale", broken, "--gpus", "T4", "--dataset-size", "10", "--output", tmp_path / "o.dino.yaml")
    assert result.exit_code == 2 and "DG001" in result.output and len(result.output.strip().splitlines()) == 1


def test_the_readme_shows_what_the_command_prints(cli, tmp_path, monkeypatch):
    from tests.helpers import REPO

    monkeypatch.chdir(REPO)
    out = tmp_path / "vits16_t4.dino.yaml"
    result = cli("rescale", "examples/dino_paper_vits16_16gpu.dino.yaml", "--gpus", "1xT4-16GB",
                 "--dataset-size", "20000", "--output", out)
    printed = result.output.replace(str(out), "vits16_t4.dino.yaml")
    assert printed.strip() in (REPO / "README.md").read_text()
