"""Script rules about DINOv2's parts: the iBOT heads and loss, KoLeo, the last-layer freeze (DG718-DG721).

Each reads what the script reader saw (dino_guard.sources.evidence): which
module made each side of IBOTPatchLoss and DINOLoss, which modules
update_momentum reaches, what KoLeoLoss is applied to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.rules.script_teacher import Sides, modules_of
from dino_guard.sources.interp import descendants
from dino_guard.sources.interp.values import Obj, is_const


def _updated(evidence) -> set:
    """ids of every module some update_momentum call moves (its teacher side and everything inside)."""
    reached = set()
    for call in evidence.trace.momentum_calls:
        for obj in call.objs:
            if isinstance(obj, Obj):
                reached |= {id(o) for o in descendants(obj)}
    return reached


@script_rule("DG718", "teacher-head-not-updated", Severity.WARNING)
def teacher_head_not_updated(evidence) -> Iterator[ScriptIssue]:
    """A teacher head whose outputs a loss uses, which no update_momentum call reaches.

    What it checks:
        the teacher modules that compute the `teacher_out` of IBOTPatchLoss
        and DINOLoss, when the script updates the teacher with
        `update_momentum`: each must be inside a module some call moves.

    Why it matters:
        with separate iBOT heads, updating only the DINO head
        (`update_momentum(student_head.dino_head, teacher_head.dino_head,
        m)`) leaves the teacher's iBOT head at its random initialisation:
        the iBOT targets are noise for the whole run (fixed in lightly's own
        ImageNet benchmark, lightly#1848). A warning: the run trains, the
        iBOT term teaches nothing.

    Example:
        `update_momentum(model.student_head.dino_head,
        model.teacher_head.dino_head, m=momentum)` with a separate
        `teacher_head.ibot_head` giving IBOTPatchLoss its teacher_out.

    Use instead:
        update the container that holds both heads:
        `update_momentum(model.student_head, model.teacher_head,
        m=momentum)`.

    References:
        lightly examples/pytorch/dinov2.py; lightly PR #1848.
    """
    trace = evidence.trace
    if not evidence.pair.only(trace.momentum_calls) or trace.ema_by_hand:
        return  # no update at all is DG717's finding; an EMA by hand is not followed
    sides, reached = Sides(evidence.roles), _updated(evidence)
    calls = [(c.pos, c.teacher, c.texts[0]) for c in trace.ibot_calls + trace.loss_calls]
    for pos, teacher, text in calls:
        for module in modules_of(teacher):
            if sides.of(module) == "teacher" and id(module) not in reached and id(module) not in trace.maybe_frozen:
                yield ScriptIssue(pos, "", f"the teacher module that computes {text or 'teacher_out'} is never "
                                  "updated: no update_momentum call reaches it, so it keeps its random initialisation",
                                  "update the module that holds all teacher heads: update_momentum(student_head, "
                                  "teacher_head, m=momentum)")
                break


@script_rule("DG719", "ibot-loss-output-dim-mismatch", Severity.ERROR)
def ibot_loss_output_dim_mismatch(evidence) -> Iterator[ScriptIssue]:
    """IBOTPatchLoss's output_dim is not the output_dim of the head whose outputs it gets.

    What it checks:
        the `output_dim` of each IBOTPatchLoss that is called against the
        `output_dim` of the DINOv2ProjectionHead (or DINOProjectionHead)
        that computes its teacher_out and student_out, when both are
        constants.

    Why it matters:
        the loss subtracts a center of shape (1, output_dim) from the
        teacher's patch outputs: another width fails on the first step with
        `The size of tensor a (8192) must match the size of tensor b
        (65536)`. lightly's default is 65536; a shrunk iBOT head next to a
        default loss always fails.

    Example:
        `ibot_head = DINOv2ProjectionHead(input_dim=384, output_dim=8192)`
        with `IBOTPatchLoss()`.

    Use instead:
        `IBOTPatchLoss(output_dim=8192)`.

    References:
        lightly.loss.IBOTPatchLoss; lightly.models.modules.DINOv2ProjectionHead.
    """
    for call in evidence.trace.ibot_calls:
        loss_dim = call.loss.fact("output_dim")
        if not is_const(loss_dim):
            continue
        for module in modules_of(call.teacher) + modules_of(call.student):
            width = module.fact("output_dim") if module.kind == "head" else None
            if is_const(width) and width != loss_dim:
                position = call.loss.facts["output_dim"][1]
                yield ScriptIssue(position, "", f"IBOTPatchLoss(output_dim={loss_dim}) gets the outputs of a head with "
                                  f"output_dim={width}: the first step fails with `The size of tensor a ({width}) must "
                                  f"match the size of tensor b ({loss_dim})`",
                                  f"write IBOTPatchLoss(output_dim={width})")
                break


def _freeze_checks(tree: ast.AST) -> list:
    """`"last_layer" in group` tests inside `for group in <optimizer>.param_groups:` loops."""
    found = []
    for loop in ast.walk(tree):
        if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.Attribute) and loop.iter.attr == "param_groups"
                and isinstance(loop.target, ast.Name)):
            continue
        for node in ast.walk(loop):
            if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
                    and node.left.value == "last_layer" and isinstance(node.ops[0], ast.In)
                    and isinstance(node.comparators[0], ast.Name)
                    and node.comparators[0].id == loop.target.id):
                found.append(node)
    return found


def _groups_named_last_layer(tree: ast.AST) -> bool:
    """Some parameter group gets a "last_layer" key: a dict literal, dict(last_layer=...), group["last_layer"] = ."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "last_layer"
                                              for k in node.keys):
            return True
        if isinstance(node, ast.keyword) and node.arg == "last_layer":
            return True
        if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant)
                and node.slice.value == "last_layer"):
            return True
    return False


@script_rule("DG720", "last-layer-freeze-no-op", Severity.WARNING)
def last_layer_freeze_no_op(evidence) -> Iterator[ScriptIssue]:
    """A last-layer freeze that looks for a parameter group no optimizer has.

    What it checks:
        `for group in optimizer.param_groups: if "last_layer" in group:
        group["lr"] = 0.0` in a script where no parameter group is ever
        given a "last_layer" key (no dict with that key, no
        `group["last_layer"] = ...`).

    Why it matters:
        an optimizer built from `model.parameters()` has one group without
        that key, so the test is never true and the last layer trains from
        the first step: DINO's and DINOv2's first-epoch freeze, meant to
        stabilise the start, does nothing. lightly's own DINOv2 and iBOT
        examples are written this way ("Optionally zero out the learning
        rate of the last layer").

    Example:
        `optimizer = AdamW(model.parameters(), lr=0.001)`, then the loop above.

    Use instead:
        build the optimizer with the last layers in their own group:
        `AdamW([{"params": others}, {"params": last_layers, "last_layer":
        True}], lr=...)`, or freeze with `head.cancel_last_layer_gradients(
        current_epoch=epoch)` (DINOProjectionHead).

    References:
        lightly examples/pytorch/dinov2.py; facebookresearch/dinov2
        ssl_meta_arch.py (`is_last_layer` parameter groups).
    """
    tree = evidence.tree
    if tree is None or _groups_named_last_layer(tree):
        return
    for node in _freeze_checks(tree):
        yield ScriptIssue((node.lineno, node.col_offset + 1), "", "no parameter group has a \"last_layer\" key (the "
                          "optimizer gets plain parameters), so this freeze never applies and the last layer trains "
                          "from the first step", "give the optimizer a parameter group {\"params\": last_layer_params, "
                          "\"last_layer\": True}, or remove the freeze")


@script_rule("DG721", "koleo-single-image-per-call", Severity.WARNING)
def koleo_single_image_per_call(evidence) -> Iterator[ScriptIssue]:
    """KoLeoLoss called in a script that loads one image per batch.

    What it checks:
        a KoLeoLoss that is called, with a DataLoader `batch_size=1` (per
        device).

    Why it matters:
        KoLeo spreads each image away from its nearest neighbour in the
        batch; alone in its batch, an image is its own neighbour, the
        distance is 0 and the loss is -log(eps): a constant without
        gradient in float32, infinite in float16 (dinov2#307, #143, #101).

    Example:
        `DataLoader(dataset, batch_size=1)` with
        `koleo_criterion(student_cls_tokens)`.

    Use instead:
        at least 2 images per device, or leave KoLeo out.

    References:
        lightly.loss.KoLeoLoss; dinov2 issue #307.
    """
    if evidence.value("train.batch_size") != 1:
        return
    for call in evidence.trace.koleo_calls:
        yield ScriptIssue(call.pos, "", f"KoLeoLoss on {call.text or 'the class tokens'} of a batch of 1 image: each "
                          "image is its own nearest neighbour and the term is a constant without gradient (infinite "
                          "in float16)", "load at least 2 images per device (DataLoader(batch_size=...)), or leave "
                          "KoLeo out")
