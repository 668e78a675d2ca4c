"""Rules: one small documented function per check, codes in one registry.

Rule modules are grouped by what they read and registered when first needed
(registry.rules_for / all_rules), not when this package is imported: a
pre-commit run over setup files loads the setup rules only, never the script
rules (which bring the script interpreter with them).
"""

# Modules whose rules check a setup (a setup file, or the partial setup a script determines).
SETUP_MODULES = ("augment", "crops", "data", "dinov2", "init", "loss", "memory", "model", "optim")
# Modules whose rules read what the script reader saw.
SCRIPT_MODULES = ("script_dinov2", "script_heads", "script_roles", "script_run", "script_teacher", "script_views")
# Modules that only document codes raised elsewhere (the loader, the script reader, the trainer's monitor).
DOCUMENTED_MODULES = ("monitor", "schema_codes", "script_codes")
