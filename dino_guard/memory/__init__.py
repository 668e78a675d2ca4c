"""Peak GPU memory of a DINO training step, predicted without a GPU.

- analytic.py: counts and the backbone table's per-image figures; no torch
  (the `check` path and the DG6xx rules use it).
- traced.py: runs the real step on the meta device (tracker.py counts bytes
  like the CUDA caching allocator, autocast.py emulates CUDA autocast and
  attention kernels, models.py builds timm/torchvision/lightly modules).
- spec.py (what a step is), breakdown.py (where the bytes go), fit.py (the
  largest batch and the batch/accumulation pair), estimate.py (one estimate
  on one GPU), profile.py (backbone
  facts for scripts/gen_backbones.py), calibration.py (measured-CSV rows).

Importing this package imports nothing heavy: torch comes only with traced.
"""
