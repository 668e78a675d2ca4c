"""The evaluator with the DINO library: what it follows and where it gives up (values, identity, roles)."""

from __future__ import annotations

import ast
import textwrap

from dino_guard.sources.interp import Interpreter
from dino_guard.sources.interp.values import Obj, Seq
from dino_guard.sources.library import DinoLibrary
from dino_guard.sources.roles import Roles


def run(source: str):
    text = textwrap.dedent(source)
    interpreter = Interpreter(ast.parse(text), text.splitlines(), DinoLibrary())
    trace = interpreter.run()
    return interpreter.globals, trace


def test_constants_flow_through_arithmetic_functions_and_defaults():
    env, _ = run("""
        BASE = 128
        def double(x, factor=2):
            return x * factor
        size = double(BASE) + 32
        config = {"batch_size": size}
        batch = config["batch_size"]
    """)
    assert env["size"] == 288 and env["batch"] == 288


def test_unknown_values_are_fresh_objects_never_shared():
    env, _ = run("""
        import sys
        a = sys.argv[1]
        b = sys.argv[1]
    """)
    assert isinstance(env["a"], Obj) and env["a"].kind == "opaque" and env["a"] is not env["b"]


def test_assignment_shares_and_deepcopy_copies():
    env, _ = run("""
        import copy, timm
        student = timm.create_model("vit_small_patch16_224")
        alias = student.to("cuda")
        teacher = copy.deepcopy(student)
    """)
    assert env["alias"] is env["student"] and env["teacher"] is not env["student"]
    assert env["teacher"].fact("feature_dim") == 384


def test_class_attributes_and_methods_are_followed():
    env, trace = run("""
        import torch, timm
        from lightly.models.modules import DINOProjectionHead
        class Net(torch.nn.Module):
            def __init__(self, name):
                super().__init__()
                self.backbone = timm.create_model(name)
                self.head = DINOProjectionHead(self.backbone.embed_dim)
        net = Net("vit_base_patch16_224")
    """)
    head = env["net"].attrs["head"]
    assert head.kind == "head" and head.fact("input_dim") == 768


def test_comprehension_lengths_follow_slices():
    env, _ = run("""
        views = [1, 2, 3, 4, 5, 6, 7, 8]
        globals_ = [v for v in views[:2]]
        locals_ = [v for v in views[2:]]
    """)
    assert isinstance(env["globals_"], Seq) and env["globals_"].max_len == 2 and env["locals_"].max_len == 6


def test_roles_from_update_momentum_without_telling_names():
    _, trace = run("""
        import copy, torch
        from lightly.models.utils import update_momentum
        backbone = torch.hub.load("facebookresearch/dino:main", "dino_vits16")
        averaged = copy.deepcopy(backbone)
        update_momentum(backbone, averaged, 0.99)
    """)
    roles = Roles(trace)
    call = trace.momentum_calls[0]
    assert roles.is_teacher(call.objs[1]) and not roles.is_teacher(call.objs[0]) and not roles.swapped


def test_loops_over_a_literal_run_per_item_and_freeze_each():
    _, trace = run("""
        import copy, torch
        from lightly.models.utils import deactivate_requires_grad
        from lightly.models.modules import DINOProjectionHead
        a = DINOProjectionHead(384)
        b = DINOProjectionHead(384)
        for m in (a, b):
            deactivate_requires_grad(m)
    """)
    assert {id(h) for h in trace.of_kind("head")} <= trace.frozen


def test_a_list_that_grows_forgets_its_length():
    env, _ = run("""
        import torch
        t = [torch.ones(1)]
        t.append(torch.ones(1))
        s = [torch.ones(1)]
        some_helper(s)
    """)
    assert env["t"].length is None and env["t"].max_len is None and env["s"].max_len is None


def test_autocast_spellings_give_the_precision():
    for line, expected in [("torch.autocast('cuda', dtype=torch.bfloat16)", "bf16"),
                           ("torch.autocast(device_type='cuda')", "fp16"),
                           ("torch.cuda.amp.autocast()", "fp16"), ("torch.cuda.amp.autocast(enabled=flag)", None),
                           ("torch.autocast('cpu')", None)]:
        _, trace = run(f"import torch\nwith {line}:\n    pass\n")
        assert [p for p, _ in trace.precisions] == [expected], line
