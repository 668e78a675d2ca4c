"""Building the model parts of a DINO step (torch): backbone, DINO head, DINO loss.

The one place they are built, for the traced memory estimate, the trainer
and the guard alike.
"""
