"""The run folder: refuse reuse, one run at a time, rename-only writes, stray temp files removed."""

import os

import pytest

from dino_guard.trainer import runfolder
from dino_guard.trainer.metrics import append_metric, read_metrics, write_metrics
from dino_guard.trainer.runfolder import RunFolderError, claimed

CMD = "dino-guard train s.dino.yaml"


def _claim(out, resume=False, overwrite=False, log=None):
    return claimed(out, resume, overwrite, CMD, log or (lambda s: None))


def _old_run(out):
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"x")
    (out / "metrics.jsonl").write_text('{"step": 1}\n')


def test_a_new_or_empty_folder_is_taken_and_gets_checkpoints(tmp_path):
    with _claim(tmp_path / "new"):
        assert (tmp_path / "new" / "checkpoints").is_dir()
    with _claim(tmp_path):  # a folder with unrelated files is not a run
        pass


def test_a_folder_holding_a_run_is_refused_spelling_out_both_commands(tmp_path):
    _old_run(tmp_path)
    with pytest.raises(RunFolderError) as err:
        with _claim(tmp_path):
            pass
    assert f"`{CMD} --resume`" in str(err.value) and f"`{CMD} --overwrite`" in str(err.value)
    with _claim(tmp_path, resume=True):
        assert (tmp_path / "checkpoints" / "last.pt").exists()


def test_overwrite_removes_only_run_outputs_and_never_follows_links(tmp_path):
    _old_run(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    target = tmp_path / "precious.json"
    target.write_text("keep")
    (tmp_path / "summary.json").symlink_to(target)
    lines = []
    with _claim(tmp_path, overwrite=True, log=lines.append):
        pass
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "summary.json").is_symlink() and target.read_text() == "keep"
    assert (tmp_path / "notes.txt").read_text() == "mine" and "removed 3" in lines[0]


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(RunFolderError, match="contradict"):
        with _claim(tmp_path, resume=True, overwrite=True):
            pass


def test_a_second_run_is_refused_naming_the_first_ones_pid(tmp_path):
    with _claim(tmp_path):
        with pytest.raises(RunFolderError, match=f"in use by another dino-guard train \\(PID {os.getpid()}\\)"):
            with _claim(tmp_path, resume=True):
                pass
    with _claim(tmp_path, resume=True):  # released when the first run ends
        pass


def test_stray_temporary_files_of_a_killed_write_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    strays = [tmp_path / "checkpoints" / ".last.pt.ab12cd_9.tmp", tmp_path / ".loss.png.zz99aa00.tmp.png",
              tmp_path / ".metrics.jsonl.k3j4h5g6.tmp"]
    for p in strays:
        p.write_bytes(b"partial")
    keep = tmp_path / ".my.tmpl"
    keep.write_text("not ours")
    lines = []
    with _claim(tmp_path, resume=True, log=lines.append):
        pass
    assert not any(p.exists() for p in strays) and keep.exists()
    assert "removed 3 partial temporary file(s)" in lines[0]


def test_outputs_replace_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("victim")
    for name, write in [("summary.json", lambda p: runfolder.write_text(p, "{}")),
                        ("metrics.jsonl", lambda p: write_metrics(p, [{"step": 1}])),
                        ("loss.png", lambda p: runfolder.replaced(p, lambda tmp: tmp.write_bytes(b"png")))]:
        link = tmp_path / name
        link.symlink_to(target)
        write(link)
        assert not link.is_symlink() and target.read_text() == "victim", name


def test_appending_metrics_never_follows_a_link(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("victim")
    (tmp_path / "metrics.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        append_metric(tmp_path / "metrics.jsonl", {"step": 1})
    assert target.read_text() == "victim"


def test_torn_and_foreign_metrics_lines_are_dropped_and_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [f'{{"step": {i}, "loss": 1.0}}' for i in range(1, 6)]
    path.write_text("\n".join(good[:3] + ["garbage", "[1, 2]", '{"step": "4"}', good[3], good[1], good[4],
                                          '{"step": 6, "loss": 1.0}', '{"step": 7, "lo']))
    rows, dropped = read_metrics(path, upto=5)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and dropped == 6
    assert read_metrics(tmp_path / "missing.jsonl", upto=5) == ([], 0)
    path.write_bytes(b'{"step": 1}\n\xff\xfe\x00\n')
    assert read_metrics(path, upto=5) == ([{"step": 1}], 1)


def test_overwrite_of_a_folder_in_use_deletes_nothing(tmp_path):
    _old_run(tmp_path)
    with _claim(tmp_path, resume=True):
        with pytest.raises(RunFolderError, match="in use"):
            with _claim(tmp_path, overwrite=True):
                pass
        assert (tmp_path / "checkpoints" / "last.pt").exists() and (tmp_path / "metrics.jsonl").exists()


def test_a_metrics_file_planted_as_a_link_is_not_read(tmp_path):
    (tmp_path / "metrics.jsonl").symlink_to("/dev/zero")
    assert read_metrics(tmp_path / "metrics.jsonl", upto=5) == ([], 0)


def test_overwrite_with_a_symlinked_checkpoints_folder_leaves_the_links_target_untouched(tmp_path):
    models = tmp_path / "big_disk_models"  # checkpoints -> /big/disk/models, shared with other runs
    models.mkdir()
    (models / "last.pt").write_bytes(b"someone's checkpoint")
    (models / "other_run.pt").write_bytes(b"another run's")
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").symlink_to(models)
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    lines = []
    with _claim(out, overwrite=True, log=lines.append):
        assert (out / "checkpoints").is_dir() and not (out / "checkpoints").is_symlink()
    assert sorted(p.name for p in models.iterdir()) == ["last.pt", "other_run.pt"]
    assert not (out / "metrics.jsonl").exists()
    assert any("checkpoints (the symlink itself; its target is untouched)" in x for x in lines), lines


def test_the_refusal_says_exactly_what_overwrite_deletes(tmp_path):
    _old_run(tmp_path)
    with pytest.raises(RunFolderError) as err:
        with _claim(tmp_path):
            pass
    assert "deletes that run's metrics.jsonl" in str(err.value)
    assert "checkpoints/*.pt (a symlinked checkpoints/ only as the link)" in str(err.value)


def test_resume_without_last_pt_is_refused_naming_what_is_on_disk(tmp_path):
    _old_run(tmp_path)
    (tmp_path / "checkpoints" / "last.pt").unlink()
    (tmp_path / "checkpoints" / "epoch_0002.pt").write_bytes(b"x")
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(RunFolderError) as err:
        with _claim(tmp_path, resume=True):
            pass
    message = str(err.value)
    assert "last.pt does not exist" in message and "metrics.jsonl, summary.json, checkpoints/epoch_0002.pt" in message
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n'  # nothing dropped
    with _claim(tmp_path / "fresh", resume=True):  # --resume of a folder with no run yet starts it
        pass


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.jsonl").write_text("")  # written at the start; no step was taken, nothing to lose
    with _claim(tmp_path, resume=True):
        pass
