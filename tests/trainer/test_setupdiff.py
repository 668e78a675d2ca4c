"""--resume: fields that change the run refuse, harmless ones are allowed and listed."""

from dino_guard.trainer.setupdiff import describe, differences
from tests.trainer.helpers import tiny_setup


def _dump(**over):
    return tiny_setup(**over).model_dump(mode="json")


def test_identical_setups_have_no_differences():
    assert differences(_dump(), _dump()) == ([], [])


def test_meaningful_changes_refuse_each_with_both_values():
    refused, allowed = differences(_dump(), _dump(train={"batch_size": 16, "seed": 3, "accumulate_grad_batches": 2},
                                                  model={"backbone": {"name": "resnet18", "dynamic_img_size": None}},
                                                  data={"size": 64}))
    fields = [f for f, _, _ in refused]
    assert fields == ["data.size", "model.backbone.dynamic_img_size", "model.backbone.name",
                      "train.accumulate_grad_batches", "train.batch_size", "train.seed"]
    assert "train.batch_size: 8 in the checkpoint, 16 now" in describe(refused) and allowed == []


def test_output_logging_and_monitor_changes_are_allowed():
    refused, allowed = differences(_dump(), _dump(train={"output_dir": "elsewhere", "checkpoint_every_steps": 5},
                                                  monitor={"patience": 50}, data={"num_workers": 2}))
    assert refused == []
    assert [f for f, _, _ in allowed] == ["data.num_workers", "monitor.patience", "train.checkpoint_every_steps",
                                          "train.output_dir"]


def test_a_field_only_one_side_has_counts_as_a_change():
    saved = _dump()
    del saved["optimizer"]["min_lr"]
    refused, _ = differences(saved, _dump())
    assert refused == [("optimizer.min_lr", None, 1e-06)]
