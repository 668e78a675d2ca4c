"""Flip every byte of a small checkpoint, one at a time: is it refused, or does it load intact?

    PYTHONPATH=. python bench/reliability/checkpoint_flips.py

Prints: file size, refused, loaded with the content exactly as saved (a byte the
zip reader ignores, e.g. header padding), loaded different (must be 0).
"""

import tempfile
from pathlib import Path

from sample_state import checkpoint_state  # beside this script

from dino_guard.trainer import checkpoint


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "last.pt"
    checkpoint.save_atomic(checkpoint_state(), path)
    good, expected = path.read_bytes(), checkpoint.content_hash(checkpoint_state())
    refused = intact = different = 0
    for at in range(len(good)):
        data = bytearray(good)
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            loaded = checkpoint.load(path)
        except checkpoint.CheckpointError:
            refused += 1
            continue
        if checkpoint.content_hash(loaded) == expected:
            intact += 1
        else:
            different += 1
    print(f"{len(good)} bytes flipped one at a time: {refused} refused, {intact} loaded intact, "
          f"{different} loaded different")


if __name__ == "__main__":
    main()
