"""Rules: one small documented function per check, codes in one registry.

Importing this package registers every rule module. Modules are grouped by
what they read: the loader's own codes, data and transform, model, crops,
loss and optimisation, memory, Python scripts, and the trainer's monitor.
"""

from dino_guard.rules import schema_codes  # noqa: F401  (registers DG0xx)
from dino_guard.rules import data, model, crops, loss, optim  # noqa: F401,E401
from dino_guard.rules import monitor  # noqa: F401
from dino_guard.rules import script_codes, script_roles, script_views, script_teacher, script_run  # noqa: F401,E401
from dino_guard.rules import memory  # noqa: F401
from dino_guard.rules import augment  # noqa: F401
