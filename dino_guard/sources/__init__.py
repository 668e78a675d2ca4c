"""Inputs other than setup files, turned into a (partial) Setup.

python.py reads lightly DINO training scripts with `ast` (never importing or
running them) so that the same rules run on scripts as on setup files.
"""
