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


def test_only_the_tables_know_every_mode():
    """Below the encoder's and decoder's tables (and the container's version table),
    codec modules do not reach into a mode's package."""
    tables = {"inrcodec.codec.encoder", "inrcodec.codec.decoder", "inrcodec.codec.bitstream"}
    shared = [m for m in import_graph() if m.startswith("inrcodec.codec.")
              and not m.startswith(("inrcodec.codec.latent", "inrcodec.codec.weights"))
              and m not in tables]
    graph = import_graph()
    for m in shared:
        assert not [d for d in graph[m]
                    if d.startswith(("inrcodec.codec.latent", "inrcodec.codec.weights"))], m
