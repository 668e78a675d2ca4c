"""Inputs other than setup files, turned into a (partial) Setup.

python.py reads lightly DINO training scripts with `ast` (never importing or
running them): interp/ is a generic Python evaluator, library/ says what
lightly, timm/torchvision, torch data, Lightning and LightlyTrain calls mean,
partial_setup.py turns what they saw into Setup fields (only the certain
ones), and evidence.py hands the rest to the script rules (rules/script_*.py).
"""
