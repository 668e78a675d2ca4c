"""Files on disk: the training images (which files count, where data.path points, how many) and the
project a file belongs to.

Shared by `check` (DG102 and the other rules that need the data set's size)
and the trainer, so both agree on what an image is. Stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
MAX_FILES_COUNTED = 2_000_000  # a pre-commit hook must stay fast: stop counting there


def dataset_size(data, setup_path: str, count_files: bool) -> int | None:
    """Images in the training set: stated, synthetic, or counted under data.path."""
    if data.dataset_size:
        return data.dataset_size
    if data.synthetic:
        return data.size
    if data.path and count_files:
        return count_images(resolve_data_path(data.path, setup_path))
    return None


def resolve_data_path(path: str, setup_path: str) -> Path:
    """Relative paths are relative to the working directory, else to the setup file."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return Path(setup_path).parent / candidate


def labelled_folder(data, setup_path: str) -> bool | None:
    """True when the training images carry class labels (synthetic, or every image in a class
    subfolder of data.path, as the trainer reads it); None when unknown (no folder to look at)."""
    if data.synthetic:
        return True
    folder = resolve_data_path(data.path, setup_path) if data.path else None
    if folder is None or not folder.is_dir():
        return None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    at_root = any(e.is_file() and not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
                  for e in entries)
    return not at_root and any(e.is_dir() for e in entries)


def count_images(folder: Path) -> int | None:
    if not folder.is_dir():
        return None
    count = 0
    for _, _, files in os.walk(folder):
        # hidden files are skipped, as the trainer skips them
        count += sum(1 for name in files
                     if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES)
        if count > MAX_FILES_COUNTED:
            break
    return count


def project_root(path: Path) -> Path | None:
    """The nearest folder holding `path` with .git or pyproject.toml (its own folder first): the project
    test folders are relative to, and whose files may import a script."""
    folder = Path(os.path.abspath(path)).parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists() or (candidate / "pyproject.toml").is_file():
            return candidate
    return None
