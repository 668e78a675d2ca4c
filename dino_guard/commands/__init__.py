"""The click commands of `dino-guard`, one module each.

dino_guard.cli lists them and imports a command's module only when it runs,
so `dino-guard check` (a pre-commit hook) never pays for torch's import.
"""
