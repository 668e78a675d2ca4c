"""`dino-guard rescale`: a reference recipe rewritten for the user's GPUs and data set (recipe.py decides)."""
