"""Script rules about DINOv2's parts: the iBOT heads and loss, KoLeo, the last-layer freeze (DG718-DG721).

Each reads what the script reader saw (dino_guard.sources.evidence): which
module made each side of IBOTPatchLoss and DINOLoss, which modules
update_momentum reaches, what KoLeoLoss is applied to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.plan import DINOV2_LR_REFERENCE_BATCH
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.rules.script_teacher import Sides, modules_of
from dino_guard.sources.call_edit import callee_name
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
        # The student's head is the reference (as for DG401 and DG725): a loss that matches it and a
        # teacher head that does not is the teacher head's mistake, and the help says so.
        student = [module for module in modules_of(call.student) if module.kind == "head"]
        teacher = [module for module in modules_of(call.teacher) if module.kind == "head"]
        for role, module in [("student", m) for m in student] + [("teacher", m) for m in teacher]:
            width = module.fact("output_dim")
            if is_const(width) and width != loss_dim:
                position = call.loss.facts["output_dim"][1]
                student_matches = role == "teacher" and any(m.fact("output_dim") == loss_dim for m in student)
                help = (f"write the teacher's iBOT head with output_dim={loss_dim}, the student's"
                        if student_matches else f"write IBOTPatchLoss(output_dim={width})")
                yield ScriptIssue(position, "", f"IBOTPatchLoss(output_dim={loss_dim}) gets the outputs of the "
                                  f"{role}'s head with output_dim={width}: the first step fails with `The size of "
                                  f"tensor a ({width}) must match the size of tensor b ({loss_dim})`", help)
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


def _warmup_epochs(call: ast.Call) -> tuple[float, ast.AST] | None:
    """(A, node) for `linear_warmup_schedule(..., warmup_steps=int(A / epochs * total_steps), ...)`."""
    node = next((k.value for k in call.keywords if k.arg == "warmup_steps"),
                call.args[1] if len(call.args) > 1 else None)
    for part in ast.walk(node) if node is not None else ():
        if (isinstance(part, ast.BinOp) and isinstance(part.op, ast.Div) and isinstance(part.left, ast.Constant)
                and isinstance(part.left.value, (int, float)) and isinstance(part.right, ast.Name)):
            return float(part.left.value), node
    return None


@script_rule("DG722", "teacher-temp-warmup-longer-than-run", Severity.WARNING)
def teacher_temp_warmup_longer_than_run(evidence) -> Iterator[ScriptIssue]:
    """A teacher-temperature warm-up of more epochs than the script trains.

    What it checks:
        `linear_warmup_schedule(step, warmup_steps=int(A / epochs *
        total_steps), start_value, end_value)` (lightly's DINOv2 example
        writes A = 30) in a script that trains fewer than A epochs.

    Why it matters:
        the warm-up then lasts A / epochs times the run: the teacher never
        reaches its final temperature (0.07) and trains the whole run
        sharper than the recipe. DINO's `warmup_teacher_temp_epochs` is
        DG404 (setups) and DG706 (DINOLoss's own warm-up).

    Example:
        `epochs = 10` with `warmup_steps=int(30 / epochs * total_steps)`.

    Use instead:
        a warm-up that is a share of the run: `warmup_steps=int(0.3 *
        total_steps)`.

    References:
        lightly examples/pytorch/dinov2.py; facebookresearch/dinov2
        `warmup_teacher_temp_epochs: 30`.
    """
    epochs = evidence.value("train.epochs")
    if evidence.tree is None or not isinstance(epochs, int) or isinstance(epochs, bool):
        return
    for call in ast.walk(evidence.tree):
        if not isinstance(call, ast.Call):
            continue
        found = _warmup_epochs(call) if callee_name(call) == "linear_warmup_schedule" else None
        if found and found[0] > epochs:
            warm, node = found
            yield ScriptIssue((node.lineno, node.col_offset + 1), "", f"the teacher temperature warms up over "
                              f"{warm:g} epochs in a run of {epochs}: it never reaches its final value",
                              "warm up over a share of the run, e.g. warmup_steps=int(0.3 * total_steps)")


REFERENCE = DINOV2_LR_REFERENCE_BATCH  # DINOv2's lr rule: lr x sqrt(batch / 1024), from the run plan


def _sqrt_ratio(node: ast.AST) -> ast.BinOp | None:
    """The `a / b` inside `math.sqrt(a / b)`, `np.sqrt(a / b)` or `(a / b) ** 0.5`."""
    if isinstance(node, ast.Call) and callee_name(node) == "sqrt" and node.args:
        inner = node.args[0]
    elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant)
          and node.right.value == 0.5):
        inner = node.left
    else:
        return None
    return inner if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Div) else None


@script_rule("DG723", "sqrt-lr-reference-is-the-batch", Severity.WARNING)
def sqrt_lr_reference_is_the_batch(evidence) -> Iterator[ScriptIssue]:
    """DINOv2's square-root lr rule with its reference batch edited to the script's own batch.

    What it checks:
        `lr * math.sqrt(batch_size / N)` (or `** 0.5`) in a DINOv2 script
        whose DataLoader batch is the constant N, when N is not 1024.

    Why it matters:
        DINOv2's lr (0.004 for ViT-S/14 ... ViT-g/14) is for 1024 images a
        step, scaled by sqrt(batch / 1024). With the reference set to the
        batch itself the ratio is 1 and a 64-image run trains with the
        1024-image lr, 4x too high: dinov2#143 diverged to NaN at 13k
        iterations this way.

    Example:
        `DataLoader(..., batch_size=64)` and `lr = 0.004 * math.sqrt(64 / 64)`.

    Use instead:
        `lr = 0.004 * math.sqrt(batch_size / 1024)`.

    References:
        facebookresearch/dinov2 `scaling_rule: sqrt_wrt_1024`; dinov2 issue #143.
    """
    batch = evidence.value("train.batch_size")
    if evidence.tree is None or evidence.value("method") != "dinov2" or not isinstance(batch, int) \
            or batch == REFERENCE:
        return
    for node in ast.walk(evidence.tree):
        ratio = _sqrt_ratio(node)
        if ratio is not None and isinstance(ratio.right, ast.Constant) and ratio.right.value == batch:
            yield ScriptIssue((ratio.right.lineno, ratio.right.col_offset + 1), "", f"the square-root lr rule refers "
                              f"to the script's own batch ({batch}), so the lr is the one tuned for "
                              f"{REFERENCE} images, {(REFERENCE / batch) ** 0.5:.1f}x too high for {batch}",
                              f"scale against {REFERENCE}: math.sqrt(batch_size / {REFERENCE})")


META_EPOCH_LENGTH = 1250  # facebookresearch/dinov2 OFFICIAL_EPOCH_LENGTH: iterations per "epoch", whatever the data


def _epoch_length_names(tree: ast.AST) -> set:
    """Names bound to 1250 (`OFFICIAL_EPOCH_LENGTH = 1250`)."""
    return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and node.value.value == META_EPOCH_LENGTH for t in node.targets if isinstance(t, ast.Name)}


def _is_length(node: ast.AST, names: set) -> bool:
    return (isinstance(node, ast.Constant) and node.value == META_EPOCH_LENGTH) or (
        isinstance(node, ast.Name) and node.id in names)


@script_rule("DG724", "fixed-epoch-length-schedule", Severity.WARNING)
def fixed_epoch_length_schedule(evidence) -> Iterator[ScriptIssue]:
    """Schedules sized by DINOv2's 1,250-iteration "epoch" in a loop over the data set's real epochs.

    What it checks:
        a product with 1250 (or a name bound to 1250, Meta's
        `OFFICIAL_EPOCH_LENGTH`) in a script whose training loop walks a
        DataLoader, when no loop is bounded by that length (no
        `range(1250)`, no comparison with it).

    Why it matters:
        Meta's DINOv2 counts an "epoch" as 1,250 iterations whatever the
        data (dinov2#135, #376, #437, #494). Schedules of `epochs * 1250`
        steps in a loop of `epochs * len(dataloader)` steps end early (the
        lr, teacher momentum and temperature sit at their final values for
        the rest of the run) or never reach their end.

    Example:
        `total_steps = epochs * 1250` for cosine_schedule with `for batch
        in dataloader:` inside `for epoch in range(epochs):`.

    Use instead:
        `total_steps = epochs * len(dataloader)`.

    References:
        facebookresearch/dinov2 train.py (`OFFICIAL_EPOCH_LENGTH`); dinov2
        issues #135, #376.
    """
    tree, trace = evidence.tree, evidence.trace
    if tree is None or not trace.train_loaders:
        return
    names = _epoch_length_names(tree)
    bounded = any((isinstance(n, ast.Call) and getattr(n.func, "id", "") == "range"
                   and any(_is_length(a, names) for a in n.args))
                  or (isinstance(n, ast.Compare) and any(_is_length(c, names) for c in [n.left, *n.comparators]))
                  for n in ast.walk(tree))
    if bounded:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and (
                _is_length(node.left, names) or _is_length(node.right, names)):
            yield ScriptIssue((node.lineno, node.col_offset + 1), "", f"the schedules count {META_EPOCH_LENGTH} "
                              "iterations an epoch (DINOv2's OFFICIAL_EPOCH_LENGTH), but the loop runs "
                              "len(dataloader) iterations an epoch: they end early or never",
                              "size them from the data: total_steps = epochs * len(dataloader)")
            return
