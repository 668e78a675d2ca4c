"""The reference DINO trainer (torch, timm, lightly; the runtime guard reuses its monitor).

Modules, in the order a step needs them:

- build.py       backbone (timm / torchvision), lightly heads and loss, teacher
- synthetic.py   the built-in labeled shapes data set
- data.py        image folders, bad-file handling, sampler, collate, views
- schedules.py   per-optimizer-step lr / weight decay / momentum / temperature
- runfolder.py   the run folder: lock, --resume/--overwrite, writes by rename, stray temp files
- checkpoint.py  verified checkpoints (format version, content hash), weights_only load, RNG state
- setupdiff.py   what --resume may and may not change in the setup
- teacher_stats.py  the teacher's std and entropy (also the runtime guard's)
- monitor.py     loss-trend checks (DG5xx, documented in rules/monitor.py; also the runtime guard's)
- knn.py         kNN top-1 of a backbone on a labeled held-out split
- loop.py        the training loop (`dino-guard train` is dino_guard/commands/train.py)
"""
