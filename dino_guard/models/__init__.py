"""Building the model parts of a DINO step (torch): backbone, DINO head, DINO loss, and
DINOv2's parts (dinov2.py: DINOv2 head, iBOT and KoLeo losses, the masked ViT).

The one place they are built, for the traced memory estimate, the trainer
and the guard alike.
"""
