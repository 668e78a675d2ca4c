"""Help texts in script terms for findings on *.py files.

The setup rules phrase their help as setup-file keys (`set loss.output_dim:
2048`); on a script the fix is a keyword argument (`DINOLoss(output_dim=2048)`).
`rephrase` rewrites a finding's help for a script; the check path applies it
to findings of files read by load_python.
"""

from __future__ import annotations

import dataclasses
import re

from dino_guard.findings import Finding
from dino_guard.codes import get

_FIXED = {
    "DG101": "pass the transform to the data set: LightlyDataset(path, transform=DINOTransform()) "
             "or ImageFolder(path, transform=DINOTransform())",
    "DG302": "create the ViT with timm.create_model(..., dynamic_img_size=True) (timm interpolates the position "
             "embeddings per crop size)",
}
_PATTERNS = {
    "DG201": (re.compile(r"set model\.head\.input_dim: (\d+).*"),
              r"write DINOProjectionHead(input_dim=\1, ...), e.g. input_dim=backbone.embed_dim"),
    "DG401": (re.compile(r"set loss\.output_dim: (\d+).*"), r"write DINOLoss(output_dim=\1, ...), the head's output_dim"),
    "DG104": (re.compile(r".*raise data\.num_workers to about (\d+).*"),
              r"raise DataLoader(num_workers=\1) if the machine has that many free cores, or run the augmentations "
              r"on the GPU (dino-guard's trainer does: `dino-guard train` with transform.backend: device)"),
    "DG601": (re.compile(r"use batch_size: (\d+) with accumulate_grad_batches: (\d+)"),
              r"use DataLoader(batch_size=\1) and step the optimizer every \2 batches "
              r"(Lightning: Trainer(accumulate_grad_batches=\2))"),
}
_YAML_KEY = re.compile(r"\b([a-z_]+(?:\.[a-z_]+)*): (\[[^\]]*\]|-?[\w.]+)")


def rephrase(finding: Finding) -> Finding:
    """The same finding with its help written as Python keyword arguments."""
    try:
        origin = get(finding.code).origin
    except KeyError:
        return finding
    if origin != "setup":
        return finding  # script and loader codes already speak Python
    if finding.code in _FIXED:
        text = _FIXED[finding.code]
    elif finding.code in _PATTERNS:
        pattern, replacement = _PATTERNS[finding.code]
        text = pattern.sub(replacement, finding.help)
    else:
        text = _YAML_KEY.sub(lambda m: f"{m.group(1).rsplit('.', 1)[-1]}={m.group(2)}", finding.help)
    return dataclasses.replace(finding, help=text)
