"""The package's shape: modules form layers (no import cycles, counting imports inside
functions too), and `import inrcodec` loads none of the training code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).parent.parent / "inrcodec"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """inrcodec module -> the inrcodec modules it imports (anywhere in its body)."""
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")
                    base = base[:len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets.append(mod)
                targets += [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            for t in targets:
                if t in mods and t != name and t != "inrcodec":
                    graph[name].add(t)
    return graph


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_codec_and_model_do_not_reach_up():
    """codec/ and model/ import neither the facade, the CLI, datasets nor training."""
    up = ("inrcodec.api", "inrcodec.cli", "inrcodec.batch", "inrcodec.training")
    for m, deps in import_graph().items():
        if m.startswith(("inrcodec.codec", "inrcodec.model")):
            assert not [d for d in deps if d.startswith(up)], (m, deps)


def test_import_inrcodec_loads_no_training_code():
    code = ("import sys, inrcodec; "
            "print(sorted(m for m in sys.modules if m.startswith('inrcodec.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_modes_do_not_import_each_other():
    """The latent mode and the weight mode live in packages of their own: neither imports
    the other, so a change to one stays inside it."""
    rooms = ("inrcodec.codec.latent", "inrcodec.codec.weights")
    for m, deps in import_graph().items():
        for here, there in (rooms, rooms[::-1]):
            if m.startswith(here):
                assert not [d for d in deps if d.startswith(there)], (m, deps)


def test_only_the_registry_knows_the_modes():
    """Below the one table of modes (codec/registry.py), no shared module of codec/ (the
    container included) reaches into a mode's package: a mode registers itself there."""
    rooms = ("inrcodec.codec.latent", "inrcodec.codec.weights")
    graph = import_graph()
    shared = [m for m in graph if m.startswith("inrcodec.codec.") and not m.startswith(rooms)
              and m != "inrcodec.codec.registry"]
    assert "inrcodec.codec.bitstream" in shared and "inrcodec.codec.header" in shared
    for m in shared:
        assert not [d for d in graph[m] if d.startswith(rooms)], m
    assert [d for d in graph["inrcodec.codec.registry"] if d.startswith(rooms)]


def test_pruning_lives_in_model():
    """Magnitude pruning is written once, in model/prune.py; the modes and training call it."""
    import re
    for path in PKG.rglob("*.py"):
        if path.name == "prune.py":
            continue
        text = path.read_text()
        assert not re.search(r"argsort\(.*abs\(\)", text), path


def test_no_long_modules_or_functions():
    """A module a reader can hold (450 lines) and functions of at most 80 lines, in the
    package and the benchmarks, except the compiled kernel named here, which stays whole
    for speed: numba compiles it into one loop nest (codec/latent/rate_kernels.py)."""
    import ast
    allowed = {"_pass_block"}
    for path in [*PKG.rglob("*.py"), *(PKG.parent / "benchmarks").rglob("*.py")]:
        text = path.read_text()
        assert text.count("\n") <= 450, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name not in allowed:
                assert node.end_lineno - node.lineno < 80, (path, node.name)
