"""DG5xx: the trainer's loss-trend checks (raised by dino_guard.trainer.monitor).

They are documented here, with every other code, so that `dino-guard rule
DG502` explains a stopped run. Thresholds live in the setup's `monitor:`
section; each doc names the field that sets it.
"""

from dino_guard.findings import Severity
from dino_guard.rules.registry import documented

documented("DG501", "non-finite-loss", Severity.ERROR, """
    The DINO loss or the gradient norm became NaN or infinite; the run stops.

    What it checks:
        After every optimizer step, that the loss and the total gradient norm
        of the student are finite. The run stops at that step, exits 3 and
        keeps the last checkpoint written before it (a good one).

    Why it matters:
        One NaN step poisons the student, then the teacher through the EMA;
        every later step is wasted GPU time. The usual causes are fp16
        overflow, a learning rate far too high for the batch, and no
        gradient clipping.

    Example:
        train: {precision: fp16}
        optimizer: {lr: 0.5, clip_grad: null}

    Use instead:
        train: {precision: bf16}
        optimizer: {lr: 0.0005, clip_grad: 3.0}

    References:
        facebookresearch/dino main_dino.py ("Loss is nan, stopping training");
        lightly DINO example.
    """, origin="trainer")

documented("DG502", "uniform-collapse", Severity.ERROR, """
    The loss sits at ln(output_dim) and the teacher's outputs are uniform: collapse; the run stops.

    What it checks:
        Over the last `monitor.collapse_window` steps (after
        `monitor.grace_steps`), the loss and the entropy of the teacher's
        distribution both within `monitor.uniform_collapse_tolerance`
        (a fraction) of ln(output_dim).

    Why it matters:
        A uniform teacher carries no information: the student learns to
        output the uniform distribution and the features stop improving.
        DINO avoids it by sharpening the teacher (a low teacher
        temperature); a teacher temperature far above 0.07, or a centering
        that dominates, flattens the teacher.

    Example:
        loss: {teacher_temp: 5.0, warmup_teacher_temp: 5.0}

    Use instead:
        loss: {teacher_temp: 0.04, warmup_teacher_temp: 0.04}   # at most 0.07

    References:
        Caron et al. 2021, section 5.3 (collapse: sharpening vs centering);
        facebookresearch/dino #246.
    """, origin="trainer")

documented("DG503", "dimensional-collapse", Severity.ERROR, """
    The teacher gives (nearly) the same output for every image: collapse to one dimension; the run stops.

    What it checks:
        The standard deviation of the l2-normalized teacher outputs across
        the batch (lightly.utils.debug.std_of_l2_normalized), taken after
        DINO's centering (what the teacher's softmax sees), over the last
        `monitor.collapse_window` steps, below `monitor.min_teacher_std`
        times 1/sqrt(output_dim) (the value of isotropic outputs). Raw
        outputs share a large common part that the center removes; their
        std falls below the floor in healthy runs. A std below the floor is
        judged against the run's own history, at any step: it is collapse
        when it fell there (below half of an earlier peak that reached the
        floor), or when the loss confirms it: below 5% of ln(output_dim)
        over the window (the loss is the teacher's entropy plus the
        student's KL to it, so the teacher puts every image on one
        prototype and the student copies it). A std that starts near zero
        and grows (DINOv2's LayerScale, init_values 1e-5, makes every block
        nearly the identity), or stays at its init while the student still
        learns (a slow EMA teacher), is not: there the loss rises as the
        center spreads the teacher out, or stays well above 0.

    Why it matters:
        Outputs that do not depend on the input make the loss easy and the
        features useless. DINO's centering exists to prevent this; a center
        that never moves (center_momentum 1.0) or a learning rate far too
        high lets one dimension dominate.

    Example:
        loss: {center_momentum: 1.0}

    Use instead:
        loss: {center_momentum: 0.9}

    References:
        Chen and He 2021 (SimSiam), section 4.1 (std of l2-normalized output);
        Caron et al. 2021, section 5.3.
    """, origin="trainer")

documented("DG504", "loss-rising", Severity.WARNING, """
    The student's loss beyond the teacher's entropy has risen well above its minimum: the run may be diverging.

    What it checks:
        DINO's loss is the teacher's entropy plus KL(teacher || student).
        The KL part (loss - teacher entropy), averaged over
        `monitor.divergence_window` steps (20: a teacher that piles onto one
        prototype for a few steps lets the KL drop near 0, and a shorter mean
        would take that as the baseline), above
        `monitor.divergence_factor` times its lowest value so far and above
        it by `monitor.divergence_margin` x ln(output_dim), outside the
        teacher temperature warmup (DG507 explains a rise there). Printed
        once; DG505 stops the run if it lasts.

    Why it matters:
        A student that stops following its teacher usually means a learning
        rate too high for the effective batch, or weight decay far too
        strong. A loss that rises only because the teacher's entropy rises
        is not that: early in short runs with a fast teacher, the teacher
        piles onto a few prototypes (loss near 0), the center catches up and
        spreads it out (loss back near ln(output_dim)), and learning goes on
        (measured: a run whose kNN top-1 rose 15 points went through this).

    Example:
        optimizer: {lr: 0.05}   # per 256 images

    Use instead:
        optimizer: {lr: 0.0005, warmup_epochs: 10}

    References:
        facebookresearch/dino main_dino.py (lr = 0.0005 * batch / 256, 10 warmup epochs).
    """, origin="trainer")

documented("DG505", "loss-divergence", Severity.ERROR, """
    The loss stayed far above its minimum for `monitor.patience` steps: divergence; the run stops.

    What it checks:
        DG504's condition holding for `monitor.patience` consecutive steps.

    Why it matters:
        A diverged run does not come back on its own; stopping keeps the
        last good checkpoint and the GPU hours.

    Example:
        optimizer: {lr: 0.05, clip_grad: null}

    Use instead:
        optimizer: {lr: 0.0005, clip_grad: 3.0}

    References:
        facebookresearch/dino main_dino.py.
    """, origin="trainer")

documented("DG506", "no-progress", Severity.WARNING, """
    After the learning-rate warmup the loss has not gone down.

    What it checks:
        The mean loss over the last `monitor.collapse_window` steps after
        the warmup compared with its mean over the run's first
        `monitor.collapse_window` steps: less than a `monitor.min_progress`
        (a fraction) drop is reported once, unless the teacher's entropy
        moved by more than 0.1 x ln(output_dim) meanwhile (the loss then
        follows a target that changed).

    Why it matters:
        A healthy DINO loss falls within the first epochs. A flat loss
        after warmup usually means a learning rate far too low, a frozen
        student (all parameters without gradients) or a teacher momentum
        of 1.0 from the start.

    Example:
        optimizer: {lr: 1.0e-7}

    Use instead:
        optimizer: {lr: 0.0005}

    References:
        facebookresearch/dino training logs (loss curves).
    """, origin="trainer")

documented("DG507", "teacher-temp-warmup-rise", Severity.INFO, """
    The loss rose during the teacher temperature warmup: expected, not a problem.

    What it checks:
        A rise that DG504 would report, but inside the linear warmup of the
        teacher temperature (loss.warmup_teacher_temp -> loss.teacher_temp
        over loss.warmup_teacher_temp_epochs).

    Why it matters:
        A warmer teacher has a flatter distribution, so the cross-entropy
        rises while the features still improve. Knowing that saves someone
        from killing a healthy run.

    Example:
        loss: {warmup_teacher_temp: 0.04, teacher_temp: 0.07, warmup_teacher_temp_epochs: 30}

    Use instead:
        Nothing to change.

    References:
        facebookresearch/dino main_dino.py (teacher temperature warmup).
    """, origin="trainer")

documented("DG513", "knn-below-start", Severity.ERROR, """
    A warm start's kNN fell below the kNN of the weights it started from; the run stops.

    What it checks:
        With `model.init`, the kNN top-1 of the teacher backbone at every
        evaluation (`eval.every_steps`, default 10 along the run) against the
        kNN of the initial weights, measured before step one. A drop counts
        when it is more than `monitor.knn_drop_margin` points and more than
        twice its sampling error: the queries are the same images each
        time, so the error comes from the paired comparison, the queries
        right at the start and wrong now (b) and the reverse (c), n queries:
        100 * sqrt(b + c - (b - c)^2 / n) / n points. On the demo's 240
        queries one accuracy near 60% is +/-3.2 points, more than the margin
        of 2. `monitor.knn_drop_patience` counted drops in a row stop the run
        (exit 3); the message states the drop, the margin and the error.
        A checkpoint from before the per-query results were kept resumes on
        the margin alone and says so. checkpoints/best.pt keeps the best
        state measured (the start's at worst); `dino-guard export RUN_DIR`
        exports it after such a stop.

    Why it matters:
        Continued pretraining from released weights with a cold-start recipe
        destroys the features it was meant to adapt: kNN falling from 80% to
        25% to 10% within 20,000 images (dinov2#204). Every step after that
        is GPU time spent making the model worse.

    Example:
        model: {init: runs/synthetic_small}
        optimizer: {lr: 0.002, warm_start_lr_factor: 3.0}   # 30x the warm-start default

    Use instead:
        model: {init: runs/synthetic_small}
        optimizer: {lr: 0.002}   # warm_start_lr_factor 0.1, heads first, teacher momentum 0.999

    References:
        facebookresearch/dinov2 #204, #339; dino #207; dinov3 #18;
        Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features" (LP-FT).
    """, origin="trainer")


documented("DG508", "update-per-micro-batch", Severity.WARNING, """
    The teacher EMA or the DINO loss centre moves once per micro-batch, not once per optimizer step.

    What it checks:
        The runtime guard in Lightning with accumulate_grad_batches k > 1:
        during the first optimizer steps it counts, after each micro-batch,
        whether the teacher's weights (update_momentum) and the DINO loss's
        centre moved. More than one move in one optimizer step is reported
        once, naming which moved and how often.

    Why it matters:
        Lightning runs training_step and on_train_batch_end once per
        micro-batch. An update_momentum there, and lightly's DINOLoss (and
        IBOTPatchLoss) whose centre moves on every call, then move k times
        per optimizer step: the teacher follows the student k times faster
        than its momentum schedule says, and the centre forgets k times
        faster. The run does not fail; it trains another recipe than the
        one written down (LightlyTrain has this bug open).

    Example:
        def training_step(self, batch, batch_idx):
            update_momentum(self.student_backbone, self.teacher_backbone, m=0.996)
            ...
        Trainer(accumulate_grad_batches=4)

    Use instead:
        def on_before_optimizer_step(self, optimizer):
            update_momentum(self.student_backbone, self.teacher_backbone, m=0.996)
        (and accumulate the teacher outputs to update the centre once per step;
        `dino-guard train` does both)

    References:
        Lightning docs, gradient accumulation (hooks per micro-batch);
        lightly DINOLoss.update_center; lightly-ai/lightly-train#29.
    """, origin="trainer")
