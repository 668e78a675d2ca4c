"""DINOv2 script rules (DG718-DG722) beyond their fixtures: other ways in, and where they stay silent."""

from __future__ import annotations

from pathlib import Path

from tests.sources.helpers import run

FIXTURES = Path(__file__).resolve().parents[1] / "sources" / "fixtures"
GOOD = (FIXTURES / "good_dinov2_separate_heads.py").read_text()
SEPARATE_HEADS = """\
        self.teacher_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))
        self.student_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))
"""


def codes(text: str) -> set:
    return {f.code for f in run(text)[1]}


def test_a_dinov2_script_is_method_dinov2_and_passes():
    loaded, findings = run(GOOD)
    assert loaded.setup.method == "dinov2"
    assert [f.code for f in findings if f.severity.value != "info"] == []


def test_heads_built_through_functools_partial_are_read_as_lightlys_example_writes_them():
    partial = """\
        head = partial(DINOv2ProjectionHead, input_dim=WIDTH)
        self.teacher_head = Heads(head(), head())
        self.student_head = Heads(head(), head())
"""
    text = "from functools import partial\n" + GOOD.replace(SEPARATE_HEADS, partial)
    assert "DG201" not in codes(text.replace("WIDTH", "384"))
    assert "DG201" in codes(text.replace("WIDTH", "2048"))


def test_dg718_silent_when_the_separate_ibot_head_is_updated_on_its_own():
    own = ("update_momentum(model.student_head.dino_head, model.teacher_head.dino_head, m=momentum)\n"
           "        update_momentum(model.student_head.ibot_head, model.teacher_head.ibot_head, m=momentum)")
    text = GOOD.replace("update_momentum(model.student_head, model.teacher_head, m=momentum)", own)
    assert "DG718" not in codes(text)
    assert "DG718" in codes(text.replace("        update_momentum(model.student_head.ibot_head, "
                                         "model.teacher_head.ibot_head, m=momentum)\n", ""))


def test_dg721_silent_with_two_images_per_batch():
    one = GOOD.replace("import torch\n", "import torch\nimport torch.distributed\n")
    assert "DG721" in codes(one.replace("batch_size=128,", "batch_size=1,"))
    assert "DG721" not in codes(one.replace("batch_size=128,", "batch_size=2,"))


def test_dg722_silent_when_the_run_is_longer_than_the_warmup():
    assert "DG722" not in codes(GOOD.replace("epochs = 100\n", "epochs = 30\n"))
    assert "DG722" in codes(GOOD.replace("epochs = 100\n", "epochs = 29\n"))


def test_dg723_silent_when_the_sqrt_rule_refers_to_1024():
    lr = ("batch_size = 128\nlr = 0.004 * math.sqrt(batch_size / REFERENCE)\n"
          'optimizer = AdamW([{"params": others}, {"params": last_layers, "last_layer": True}], lr=lr)')
    text = "import math\n" + GOOD.replace(
        'optimizer = AdamW([{"params": others}, {"params": last_layers, "last_layer": True}], lr=0.0005)', lr)
    assert "DG723" in codes(text.replace("REFERENCE", "128"))
    assert not {"DG723", "DG713"} & codes(text.replace("REFERENCE", "1024"))


def test_dg724_silent_when_the_loop_is_bounded_by_the_same_epoch_length():
    fixed = GOOD.replace("total_steps = epochs * num_batches\n",
                         "OFFICIAL_EPOCH_LENGTH = 1250\ntotal_steps = epochs * OFFICIAL_EPOCH_LENGTH\n")
    assert "DG724" in codes(fixed)
    bounded = fixed.replace("        optimizer.step()\n",
                            "        optimizer.step()\n        if batch_idx + 1 >= OFFICIAL_EPOCH_LENGTH:\n"
                            "            break\n")
    assert "DG724" not in codes(bounded)


def test_dg719_help_agrees_with_dg725_when_only_the_teacher_ibot_head_differs():
    """The student's head is the reference: a loss that matches it is right, the teacher's head is the fix."""
    text = (FIXTURES / "bad_dinov2_ibot_loss_output_dim.py").read_text()
    teacher = "self.teacher_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384"
    text = text.replace(teacher + ", output_dim=8192))", teacher + "))")
    text = text.replace("IBOTPatchLoss(output_dim=65536)", "IBOTPatchLoss(output_dim=8192)")
    found = {f.code: f for f in run(text)[1]}
    assert "the teacher's head with output_dim=65536" in found["DG719"].message
    assert found["DG719"].help == "write the teacher's iBOT head with output_dim=8192, the student's"
    assert "output_dim=8192" in found["DG725"].help
