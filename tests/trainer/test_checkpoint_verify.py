"""A checkpoint is verified on load: every damaged or foreign last.pt is refused with one line."""

import random

import pytest
import torch

from dino_guard.trainer import checkpoint
from dino_guard.trainer.checkpoint import CheckpointError


def _saved(tmp_path, state, **over):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save_atomic({**state(), **over}, path)
    return path


def test_save_then_load_round_trips_with_version_and_hash(tmp_path, state):
    loaded = checkpoint.load(_saved(tmp_path, state))
    assert loaded["format_version"] == checkpoint.FORMAT_VERSION and len(loaded["sha256"]) == 64
    assert torch.equal(loaded["student"]["w"], state()["student"]["w"]) and loaded["step"] == 3
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def _raw(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def _sealed(state, **over):
    body = {**state(), **over}
    return {**body, "format_version": checkpoint.FORMAT_VERSION, "sha256": checkpoint.content_hash(body)}


DAMAGES = {
    "zero_bytes": lambda p, s: p.write_bytes(b""),
    "truncated": lambda p, s: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "a_tensor": lambda p, s: _raw(p, torch.zeros(3)),
    "a_list": lambda p, s: _raw(p, [1, 2, 3]),
    "none": lambda p, s: _raw(p, None),
    "old_format": lambda p, s: _raw(p, s()),
    "wrong_field_type": lambda p, s: _raw(p, _sealed(s, student=[1, 2])),
    "step_is_text": lambda p, s: _raw(p, _sealed(s, step="3")),
    "negative_step": lambda p, s: _raw(p, _sealed(s, step=-1)),
    "hash_of_other_content": lambda p, s: _raw(p, {**_sealed(s), "step": 4}),
    "not_a_file": lambda p, s: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path, state, damage):
    path = _saved(tmp_path, state)
    DAMAGES[damage](path, state)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path)
    message = str(err.value)
    assert str(path) in message and "--overwrite" in message and "\n" not in message


def test_a_flipped_byte_in_tensor_data_is_refused(tmp_path, state):
    path = _saved(tmp_path, state)
    data = bytearray(path.read_bytes())
    needle = torch.arange(64, dtype=torch.float32).numpy().tobytes()[40:48]  # inside student.w's storage
    at = data.index(needle)
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        checkpoint.load(path)


def test_any_flipped_byte_is_refused_or_leaves_the_content_exactly_as_saved(tmp_path, state):
    """Never silently different: a flip in zip padding may load, but then nothing it holds changed."""
    path = _saved(tmp_path, state)
    good = path.read_bytes()
    expected = checkpoint.content_hash(state())
    positions = random.Random(0).sample(range(len(good)), 150)
    refused = 0
    for at in positions:
        data = bytearray(good)
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            loaded = checkpoint.load(path)
        except CheckpointError:
            refused += 1
            continue
        assert checkpoint.content_hash(loaded) == expected, at
    assert refused > 0


def test_save_verifies_before_replacing_so_the_old_checkpoint_survives(tmp_path, state, monkeypatch):
    path = _saved(tmp_path, state)

    real_save = torch.save

    def corrupt_save(obj, f):  # the bytes that reach the disk are not the ones meant
        real_save({**obj, "step": 99}, f)

    monkeypatch.setattr(checkpoint.torch, "save", corrupt_save)
    with pytest.raises(CheckpointError):
        checkpoint.save_atomic(state(step=7), path)
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_the_hash_covers_every_number_of_the_monitor_history_and_its_types(state):
    base = checkpoint.content_hash(state())
    changed = state()
    changed["monitor"]["losses"] = [1.5000000001]
    as_int = state()
    as_int["monitor"]["losses"] = [1]
    as_tuple = state()
    as_tuple["monitor"]["losses"] = (1.5,)
    assert len({base, checkpoint.content_hash(changed), checkpoint.content_hash(as_int),
                checkpoint.content_hash(as_tuple)}) == 4
