"""Rules: one small documented function per check, codes in one registry.

Importing this package registers every rule module. Modules are grouped by
what they read: the loader's own codes, data and transform, model, crops,
loss and optimisation, memory, Python scripts, and the trainer's monitor.
"""

from dino_guard.rules import (  # noqa: F401,E401  # noqa: F401,E401
    augment,  # noqa: F401
    crops,
    data,
    dinov2,
    loss,
    memory,  # noqa: F401
    model,
    monitor,  # noqa: F401
    optim,
    schema_codes,  # noqa: F401  (registers DG0xx)
    script_codes,
    script_dinov2,
    script_roles,
    script_run,
    script_teacher,
    script_views,
)
