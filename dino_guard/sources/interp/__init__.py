"""A generic, never-executing Python evaluator: frames, values, statements, expressions,
builtins, call arguments and a trace. It knows Python only; what a library's calls mean
comes from a library object (see hooks.py; sources/library holds the one dino-guard uses)."""

from dino_guard.sources.interp.evaluator import MAX_STEPS, Interpreter  # noqa: F401
from dino_guard.sources.interp.frames import OutOfBudget  # noqa: F401
from dino_guard.sources.interp.scripts import descendants, find_method  # noqa: F401
