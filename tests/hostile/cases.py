"""The hostile-input battery: each case builds its files in a folder and names the command to run.

A case holds when the command exits with a documented status, prints no
traceback and finishes within the timeout; some cases also name text the
output must (or must not) hold. tests/hostile/test_battery.py runs every case
as a subprocess; bench/reliability/RESULTS.md records how many hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXITS = frozenset({0, 1, 2})  # check / estimate: ok, error findings, usage or unreadable input

BASE = """\
data: {dataset_size: 100000}
transform: {global_crop_size: 224, local_crop_size: 96, n_local_views: 6}
model:
  backbone: {name: vit_small_patch16_224, dynamic_img_size: true}
  head: {input_dim: 384, output_dim: 4096}
loss: {output_dim: 4096}
train: {epochs: 10, batch_size: 64, output_dir: runs/x}
hardware: {gpu: H100-80GB}
"""


def setup_with(**sections: str) -> str:
    """BASE with whole top-level sections replaced (`train="{batch_size: 8}"`)."""
    lines = [line for line in BASE.splitlines(keepends=True)
             if not any(line.startswith(f"{name}:") for name in sections)]
    lines = [line for line in lines if not (line.startswith("  ") and "model" in sections)]
    return "".join(lines) + "".join(f"{name}: {value}\n" for name, value in sections.items())


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], list]  # builds files under the folder, returns the arguments after `dino-guard`
    exits: frozenset = EXITS
    must_say: str = ""  # text the output must hold (case-insensitive)
    must_not_say: str = ""
    env: dict | None = None
    needs: str = ""  # a condition the case needs, checked by `skip_reason`


def _file(name: str, text: str, command: str = "check", *extra: str) -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        path = folder / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return [command, *extra, str(path)]

    return make


def _bytes(name: str, data: bytes, command: str = "check", *extra: str) -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        (folder / name).write_bytes(data)
        return [command, *extra, str(folder / name)]

    return make


def _fifo(inside_folder: bool = False, name: str = "x.dino.yaml", command: str = "check") -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        os.mkfifo(folder / name)
        return [command, str(folder if inside_folder else folder / name)]

    return make


def _with_pin(name: str, text: str) -> Callable[[Path], list]:
    """A script that uses a lightly name, next to an odd pin file."""
    def make(folder: Path) -> list:
        (folder / ".git").mkdir()
        (folder / name).write_text(text)
        (folder / "train.py").write_text("from lightly.data import DINOCollateFunction\n")
        return ["check", str(folder / "train.py")]

    return make


def _deep_path(folder: Path) -> list:
    deep = folder.joinpath(*["d"] * 500)
    deep.mkdir(parents=True)
    (deep / "x.dino.yaml").write_text(BASE)
    return ["check", "--force-exclude", str(deep / "x.dino.yaml")]


def _pyproject_fifo(folder: Path) -> list:
    os.mkfifo(folder / "pyproject.toml")
    (folder / "x.dino.yaml").write_text(BASE)
    return ["check", "x.dino.yaml"]


def _undecodable_name(folder: Path) -> list:
    Path(os.fsdecode(bytes(folder) + b"/\xff" + OSC.encode() + b".dino.yaml")).write_text(BASE)
    return ["check", str(folder)]


def _link(target: str, inside_folder: bool = False, command: str = "check") -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        (folder / "x.dino.yaml").symlink_to(target)
        return [command, str(folder if inside_folder else folder / "x.dino.yaml")]

    return make


def _loop(folder: Path) -> list:
    (folder / "a.dino.yaml").symlink_to(folder / "b.dino.yaml")
    (folder / "b.dino.yaml").symlink_to(folder / "a.dino.yaml")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    return ["check", str(folder)]


def _unreadable_file(folder: Path) -> list:
    (folder / "ok.dino.yaml").write_text(BASE)
    locked = folder / "locked.dino.yaml"
    locked.write_text(BASE)
    locked.chmod(0)
    return ["check", str(folder)]


def _unreadable_folder(folder: Path) -> list:
    (folder / "ok.dino.yaml").write_text(BASE)
    locked = folder / "locked"
    locked.mkdir()
    (locked / "y.dino.yaml").write_text(BASE)
    locked.chmod(0)
    return ["check", str(folder)]


def _pyproject(text: str, mode: int | None = None) -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        (folder / "x.dino.yaml").write_text(BASE)
        project = folder / "pyproject.toml"
        project.write_text(text, encoding="utf-8")
        if mode is not None:
            project.chmod(mode)
        return ["check", "x.dino.yaml"]  # run in `folder`: the pyproject.toml there is read

    return make


def _data_folder(images: int) -> Callable[[Path], list]:
    def make(folder: Path) -> list:
        data = folder / "images"
        data.mkdir()
        for i in range(images):
            (data / f"{i}.jpg").write_bytes(b"\xff\xd8\xff")
        (folder / "x.dino.yaml").write_text(setup_with(data=f"{{path: {data}}}"))
        return ["check", str(folder / "x.dino.yaml")]

    return make


def _big_script(folder: Path) -> list:
    script = folder / "train.py"
    body = "from lightly.loss import DINOLoss\nloss = DINOLoss(output_dim=2048)\n"
    script.write_text(body + "#" * 79 + "\n" * 70_000 + "x = 1\n" * 900_000)
    return ["check", str(script)]


def _newline_path(folder: Path) -> list:
    weird = folder / "a\n::stop-commands::x,y:z.dino.yaml"
    weird.write_text(setup_with(loss="{output_dim: 2048}"))
    return ["check", "--format", "github", str(weird)]


def _script_for_train(folder: Path) -> list:
    (folder / "script.py").write_text("from lightly.loss import DINOLoss\nloss = DINOLoss()\n")
    return ["train", str(folder / "script.py")]


BIG = "1" + "0" * 5000
# An OSC sequence (retitles the terminal): click strips CSI sequences (ESC [ ... m) from piped output, not these,
# so a subprocess test sees whether dino-guard escaped it
OSC = "\x1b]0;pwned\x07"
NESTED_TOML = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"

CASES = [
    # --- numbers ---
    Case("int-5000-digits-yaml", _file("x.dino.yaml", setup_with(train=f"{{batch_size: {BIG}}}"))),
    Case("int-5000-digits-json",
         _file("x.dino.json", '{"model": {"backbone": {"name": "resnet18"}}, "train": {"epochs": ' + str(BIG) + '}}')),
    Case("int-5000-digits-toml",
         _file("x.dino.toml", f'[model.backbone]\nname = "resnet18"\n[train]\nepochs = {BIG}\n')),
    Case("int-4000-digits-batch", _file("x.dino.yaml", setup_with(train="{batch_size: %s}" % ("9" * 4000)))),
    Case("int-4000-digits-output-dim",
         _file("x.dino.yaml", setup_with(model="{backbone: {name: resnet18}, head: {output_dim: %s}}" % ("9" * 4000)))),
    Case("gpu-memory-1e400", _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: 1e400}"))),
    Case("gpu-memory-inf", _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: .inf}"))),
    Case("gpu-memory-nan", _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: .nan}"))),
    Case("gpu-memory-1e300", _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: 1e300}"))),
    Case("gpu-memory-1e300-estimate",
         _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: 1e300}"), "estimate", "--method", "analytic")),
    Case("gpu-memory-1e-300-estimate",
         _file("x.dino.yaml", setup_with(hardware="{gpu_memory_gb: 1e-300}"), "estimate", "--method", "analytic")),
    Case("lr-1e400", _file("x.dino.yaml", setup_with(optimizer="{lr: 1e400}"))),
    Case("batch-1e18", _file("x.dino.yaml", setup_with(train="{batch_size: 1000000000000000000}"))),
    Case("batch-2pow63", _file("x.dino.yaml", setup_with(train=f"{{batch_size: {2**63}}}"))),
    Case("batch-1e18-estimate",
         _file("x.dino.yaml", setup_with(train="{batch_size: 1000000000000000000}"), "estimate", "--method",
               "analytic")),
    Case("batch-2pow63-estimate",
         _file("x.dino.yaml", setup_with(train=f"{{batch_size: {2**63}, accumulate_grad_batches: {2**63}}}"),
               "estimate", "--method", "analytic")),
    Case("batch-prime-1e9", _file("x.dino.yaml", setup_with(train="{batch_size: 1000000007}"))),
    Case("batch-prime-1e9-estimate",
         _file("x.dino.yaml", setup_with(train="{batch_size: 1000000007}"), "estimate", "--method", "analytic")),
    Case("epochs-1e18", _file("x.dino.yaml", setup_with(train="{epochs: 1000000000000000000, batch_size: 64}"))),
    Case("devices-1e18",
         _file("x.dino.yaml", setup_with(train="{devices: 1000000000000000000, num_nodes: 1000000000000000000}"))),
    Case("crop-1e9",
         _file("x.dino.yaml", setup_with(transform="{global_crop_size: 1000000000, local_crop_size: 1000000000, "
                                                   "n_local_views: 1000000000}"))),
    Case("crop-1e9-estimate",
         _file("x.dino.yaml", setup_with(transform="{global_crop_size: 1000000000, local_crop_size: 96, "
                                                   "n_local_views: 1000000000}"), "estimate", "--method", "analytic")),
    Case("dataset-size-below-batch", _file("x.dino.yaml", setup_with(data="{dataset_size: 3}")), exits=frozenset({0}),
         must_say="DG417"),
    Case("dataset-size-1",
         _file("x.dino.yaml", setup_with(data="{dataset_size: 1}", train="{batch_size: 1, epochs: 1}"))),
    Case("data-path-no-images", _data_folder(0)),
    Case("data-path-one-image", _data_folder(1)),
    Case("data-path-proc", _file("x.dino.yaml", setup_with(data="{path: /proc}")), must_not_say="output"),
    Case("seed-2pow64",
         _file("x.dino.yaml", setup_with(train="{seed: 18446744073709551616}")), exits=frozenset({1}),
         must_say="train.seed"),
    Case("seed-negative",
         _file("x.dino.yaml", setup_with(train="{seed: -1}")), exits=frozenset({1}), must_say="train.seed"),
    # --- structure ---
    Case("null-key", _file("x.dino.yaml", BASE + "null: 1\n"), exits=frozenset({1})),
    Case("empty-key", _file("x.dino.yaml", BASE + "?\n: x\n"), exits=frozenset({1})),
    Case("key-Model", _file("x.dino.yaml", BASE.replace("model:", "Model:")), exits=frozenset({1}), must_say="'Model'"),
    Case("key-None", _file("x.dino.yaml", BASE + "None: 1\n"), exits=frozenset({1}), must_say="'None'"),
    Case("key-true", _file("x.dino.yaml", BASE + "true: 1\n"), exits=frozenset({1}), must_say="'true'"),
    Case("key-brackets", _file("x.dino.yaml", BASE + "x[y]: 1\n"), exits=frozenset({1}), must_say="'x[y]'"),
    Case("key-nested-Dynamic",
         _file("x.dino.yaml", BASE.replace("dynamic_img_size", "Dynamic_img_size")), exits=frozenset({1}),
         must_say="unknown key 'Dynamic_img_size' in model.backbone"),
    Case("key-int", _file("x.dino.yaml", BASE + "1: 1\n"), exits=frozenset({1})),
    Case("key-sequence", _file("x.dino.yaml", BASE + "? [a, b]\n: 1\n"), exits=frozenset({1})),
    Case("tag-float-abc", _file("x.dino.yaml", setup_with(optimizer="{lr: !!float abc}")), exits=frozenset({1})),
    Case("tag-bool-maybe", _file("x.dino.yaml", setup_with(train="{compile: !!bool maybe}")), exits=frozenset({1})),
    Case("tag-int-0x", _file("x.dino.yaml", setup_with(train="{epochs: !!int 0x}")), exits=frozenset({1})),
    Case("tag-binary-bad", _file("x.dino.yaml", setup_with(train="{output_dir: !!binary 'a'}")), exits=frozenset({1})),
    Case("tag-python-object",
         _file("x.dino.yaml", setup_with(train="{output_dir: !!python/object:os.system x}")), exits=frozenset({1})),
    Case("tag-timestamp-bad",
         _file("x.dino.yaml", setup_with(train="{output_dir: !!timestamp 2024-13-45}")), exits=frozenset({1})),
    Case("tag-on-key", _file("x.dino.yaml", BASE + "!!float abc: 1\n"), exits=frozenset({1})),
    Case("date-invalid", _file("x.dino.yaml", setup_with(train="{output_dir: 2024-11-31}")), exits=frozenset({1})),
    Case("date-valid", _file("x.dino.yaml", setup_with(train="{output_dir: 2024-11-30}")), exits=frozenset({1})),
    Case("deep-yaml", _file("x.dino.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n"), exits=frozenset({1})),
    Case("deep-yaml-map",
         _file("x.dino.yaml", "a: " + "{b: " * 50_000 + "1" + "}" * 50_000 + "\n"), exits=frozenset({1})),
    Case("deep-toml", _file("x.dino.toml", NESTED_TOML), exits=frozenset({1})),
    Case("deep-toml-tables",
         _file("x.dino.toml", "a = " + "{b = " * 20_000 + "1" + "}" * 20_000 + "\n"), exits=frozenset({1})),
    Case("deep-json", _file("x.dino.json", "[" * 50_000 + "]" * 50_000), exits=frozenset({1})),
    Case("alias-bomb", _file("x.dino.yaml", "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(9))), exits=frozenset({1})),
    Case("surrogate-json-value", _file("x.dino.json", '{"model": {"backbone": {"name": "vit\\ud800"}}}')),
    Case("surrogate-json-key",
         _file("x.dino.json", '{"model": {"backbone": {"name": "resnet18", "\\udfff": 1}}}'), exits=frozenset({1})),
    Case("surrogate-json-github",
         _file("x.dino.json", '{"model": {"backbone": {"name": "resnet18", "\\udfff": 1}}}', "check", "--format",
               "github"),
         exits=frozenset({1})),
    Case("surrogate-json-sarif",
         _file("x.dino.json", '{"model": {"backbone": {"name": "resnet18", "\\udfff": 1}}}', "check", "--format",
               "sarif"),
         exits=frozenset({1})),
    Case("nul-byte", _bytes("x.dino.yaml", b"model:\x00 1\n")),
    Case("bom-and-crlf", _bytes("x.dino.yaml", b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode())),
    Case("latin1", _bytes("x.dino.yaml", b"model: caf\xe9\n"), exits=frozenset({2})),
    Case("ansi-in-value",
         _file("x.dino.yaml", setup_with(model="{backbone: {name: \"\\e]0;pwned\\a\\e[2J\\rAll checks passed\"}}")),
         must_not_say="\x07"),
    Case("ansi-in-path",
         _file(f"{OSC}x.dino.yaml", setup_with(loss="{output_dim: 2048}")), exits=frozenset({1}), must_not_say="\x07"),
    Case("top-level-list", _file("x.dino.yaml", "- 1\n- 2\n"), exits=frozenset({1})),
    Case("top-level-scalar", _file("x.dino.yaml", "42\n"), exits=frozenset({1})),
    Case("many-documents", _file("x.dino.yaml", BASE + "---\n" + BASE), exits=frozenset({1})),
    # --- files ---
    Case("fifo-alone", _fifo(), exits=frozenset({2})),
    Case("fifo-in-folder", _fifo(inside_folder=True), exits=frozenset({2})),
    Case("dev-zero", _link("/dev/zero"), exits=frozenset({2})),
    Case("dev-urandom", _link("/dev/urandom"), exits=frozenset({2})),
    Case("dev-zero-in-folder", _link("/dev/zero", inside_folder=True), exits=frozenset({2})),
    Case("dev-zero-estimate", _link("/dev/zero", command="estimate"), exits=frozenset({2})),
    Case("dev-null", _link("/dev/null"), exits=frozenset({2})),
    Case("huge-file", _bytes("x.dino.yaml", b"#" * 2_000_001), exits=frozenset({2})),
    Case("symlink-loop", _loop, exits=frozenset({2})),
    Case("unreadable-file-in-folder", _unreadable_file, exits=frozenset({2}), needs="not-root"),
    Case("unreadable-folder-in-folder", _unreadable_folder, exits=frozenset({2}), needs="not-root"),
    Case("unreadable-even-for-root", _link("/proc/self/mem"), exits=frozenset({2}), must_say="cannot be read"),
    Case("undecodable-file-name", _undecodable_name, must_not_say="\x07"),
    Case("missing-file", lambda folder: ["check", str(folder / "nope.dino.yaml")], exits=frozenset({2})),
    Case("folder-as-setup-estimate", lambda folder: ["estimate", str(folder)], exits=frozenset({2})),
    Case("pyproject-deep",
         _pyproject("[tool.dino-guard]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"), exits=frozenset({2})),
    Case("pyproject-5000-digits", _pyproject(f"[tool.dino-guard]\nx = {BIG}\n"), exits=frozenset({2})),
    Case("pyproject-unreadable", _pyproject("[tool.dino-guard]\n", mode=0), exits=frozenset({2}), needs="not-root"),
    Case("pyproject-tool-not-table", _pyproject("tool = 3\n")),
    Case("pyproject-fifo", _pyproject_fifo),
    Case("script-too-large", _big_script, must_say="DG709"),
    Case("script-fifo", _fifo(name="train.py"), exits=frozenset({2})),
    Case("script-surrogate-escape", _file("train.py", 'import lightly\nx = "\\ud800"\n')),
    # --- issue 23: bounded work and odd pin files, each one line or a finding ---
    Case("script-list-doubled-41-times", _file("train.py", "import lightly\nx = [lightly]\n" + "x = x + x\n" * 41),
         must_say="DG709"),
    Case("script-expression-too-deep", _file("train.py", "import lightly\nx = " + "-" * 200_000 + "1\n"),
         must_say="DG709"),
    Case("pin-caret-only", _with_pin("pyproject.toml", '[tool.poetry.dependencies]\nlightly = "^"\n'),
         must_say="DG730"),
    Case("pin-dependencies-5", _with_pin("pyproject.toml", "[project]\ndependencies = 5\n"), must_say="DG730"),
    Case("pin-lock-nested", _with_pin("uv.lock", "x = " + "[" * 5000 + "]" * 5000 + "\n"), must_say="DG730"),
    Case("pin-5000-digit-version", _with_pin("requirements.txt", "lightly==1." + "5" * 5000 + "\n"), must_say="DG730"),
    Case("path-500-folders-deep", _deep_path),
    # --- command line ---
    Case("gpu-H100-0GB",
         _file("x.dino.yaml", BASE, "check", "--gpu", "H100-0GB"), exits=frozenset({2}), must_say="H100-0GB"),
    Case("estimate-batch-size-option-10-pow-400", _file("x.dino.yaml", BASE, "estimate", "--method", "analytic",
                                                        "--batch-size", "1" + "0" * 400), exits=frozenset({2})),
    Case("gpu-H100-0GB-estimate",
         _file("x.dino.yaml", BASE, "estimate", "--method", "analytic", "--gpu", "H100-0GB"), exits=frozenset({2})),
    Case("gpu-newline",
         _file("x.dino.yaml", BASE, "check", "--gpu", f"H100\n{OSC}"), exits=frozenset({2}), must_not_say="\x07"),
    Case("rule-ansi-code", lambda folder: ["rule", OSC], exits=frozenset({2}), must_not_say="\x07"),
    Case("schema-output-ansi-path",
         lambda folder: ["schema", "-o", str(folder / "no" / f"{OSC}.json")], exits=frozenset({2}),
         must_not_say="\x07"),
    Case("github-newline-path", _newline_path, exits=frozenset({1}), must_not_say="\n::stop-commands::"),
    Case("estimate-traced-100000-local-views",
         _file("x.dino.yaml", setup_with(transform="{n_local_views: 100000}"), "estimate", "--method", "traced"),
         needs="torch"),
    Case("estimate-traced-batch-1e9",
         _file("x.dino.yaml", setup_with(train="{batch_size: 1000000000}"), "estimate", "--method", "traced"),
         needs="torch"),
    Case("estimate-traced-crop-1e6",
         _file("x.dino.yaml", setup_with(transform="{global_crop_size: 1000000, local_crop_size: 96}"), "estimate",
               "--method", "traced"),
         needs="torch"),
    # --- train: the input side ---
    Case("train-script", _script_for_train, exits=frozenset({2}), must_say="setup file"),
    Case("train-seed-2pow64", _file("x.dino.yaml", setup_with(train="{seed: 18446744073709551616}"), "train"),
         exits=frozenset({1}), must_say="train.seed"),
    Case("train-data-proc", _file("x.dino.yaml", setup_with(
        data="{path: /proc, num_workers: 0}", transform="{global_crop_size: 32, local_crop_size: 16, n_local_views: 2}",
        model="{backbone: {name: test_vit}, head: {output_dim: 256, hidden_dim: 64, bottleneck_dim: 32}}",
        loss="{output_dim: 256}", hardware="{}", train="{epochs: 1, batch_size: 2, precision: fp32, output_dir: run}"),
        "train", "--device", "cpu", "--max-steps", "1"), exits=frozenset({2}), must_say="data.path", needs="torch"),
    Case("train-fifo", _fifo(command="train"), exits=frozenset({2})),
]


def skip_reason(case: Case) -> str:
    """Why this case cannot run here ('' when it can)."""
    if case.needs == "not-root" and os.geteuid() == 0:
        return "runs as root: chmod 000 does not stop root from reading"
    if case.needs == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return "needs torch (the train extra) for --method traced"
    return ""

