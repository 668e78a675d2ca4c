"""The constructor tables the script reader uses are the newest described lightly release's."""

from __future__ import annotations

from dino_guard.sources import lightly_api
from dino_guard.sources.releases import catalog as rel


def test_tables_are_the_newest_release_signatures():
    newest = rel.newest()
    assert lightly_api.DINO_HEAD == rel.signature(newest, "DINOProjectionHead")
    assert lightly_api.DINO_LOSS == rel.signature(newest, "DINOLoss")
    assert lightly_api.DINO_TRANSFORM == rel.signature(newest, "DINOTransform")


def test_the_collate_function_took_the_same_crop_arguments():
    for release in rel.releases():
        collate = rel.signature(release, "DINOCollateFunction")
        if collate is not None:
            assert collate[:5] == lightly_api.DINO_COLLATE, release


def test_crop_fields_the_rules_read_are_arguments():
    names = [name for name, _ in lightly_api.DINO_TRANSFORM]
    assert set(lightly_api.TRANSFORM_CORE) <= set(names)
