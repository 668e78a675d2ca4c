import pytest

from dino_guard.memory.spec import MemorySpec, spec_from_setup
from dino_guard.schemas import Setup


def test_spec_from_setup_reads_the_step():
    setup = Setup.model_validate({
        "transform": {"global_crop_size": 224, "local_crop_size": 96, "n_local_views": 10},
        "model": {"backbone": {"name": "vit_base_patch16_224", "dynamic_img_size": True},
                  "head": {"output_dim": 4096, "batch_norm": True}},
        "train": {"batch_size": 32, "precision": "fp32"},
        "optimizer": {"name": "sgd"},
    })
    spec = spec_from_setup(setup)
    assert (spec.batch_size, spec.precision, spec.n_local_views, spec.output_dim) == (32, "fp32", 10, 4096)
    assert spec.head_batch_norm and spec.optimizer_states == 1
    assert spec.views == [(2, 224), (10, 96)]
    assert spec_from_setup(setup, batch_size=8).batch_size == 8


def test_no_transform_means_global_crops_only():
    setup = Setup.model_validate({"model": {"backbone": {"name": "resnet18"}}})
    assert spec_from_setup(setup).views == [(2, 224)]


@pytest.mark.parametrize("batch", [0, -4])
def test_batch_must_be_positive(batch):
    with pytest.raises(ValueError, match="positive"):
        MemorySpec("resnet18", batch)


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        MemorySpec("resnet18", 8, precision="int8")


def test_the_jpeg_decode_row_shows_only_when_the_setup_decodes_on_the_device():
    from dino_guard.memory.breakdown import Breakdown

    quiet = Breakdown("analytic")
    quiet.add("weights", 10)
    assert [label for label, _ in quiet.rows() if "JPEG" in label] == []
    quiet.add("decode", 5)
    assert [label for label, _ in quiet.rows() if "JPEG" in label] == ["JPEG decoding (decode: device)"]
