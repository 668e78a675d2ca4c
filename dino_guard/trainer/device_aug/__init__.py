"""DINO multi-crop augmentation on the training device (`transform.backend: device`).

params.py draws every random number of a batch on the host, ops.py holds
the batched pixel operations, transform.py the `DeviceDINOTransform` that
applies lightly's recipe with them, and jpeg.py decodes JPEG bytes on the
device (`transform.decode: device`). pipeline.py plugs them into the trainer.
"""
