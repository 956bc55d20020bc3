"""Every script under benchmarks/ imports and answers --help with today's package layout.

Parametrised over the files on disk, so a newly added script that does not import, runs
work at import time, or has no command line fails here. Fast: the --help calls of all
scripts run in this process (runpy, as `python SCRIPT --help` would: the script's folder
first on sys.path, `__name__ == "__main__"`); the top-level runners are also run as real
`python SCRIPT --help` subprocesses, with the repository root on PYTHONPATH and another
working directory.
"""
import ast
import contextlib
import fnmatch
import json
import importlib
import io
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
STUDIES = BENCH / "studies"
HARNESS = BENCH / "harness"
# Modules that are imported, not run (benchmarks.X, and the harness package); everything
# else is a script.
LIBRARIES = {"__init__.py", "bd.py", "report.py", "paper_report.py", "speed_latent.py",
             "speed_weights.py"}
# The runners a user needs (README); the rest are the studies under studies/.
RUNNERS = ("bench.py", "big_photos.py", "fuzz_decoder.py", "paper.py",
           "speed.py")

ALL_FILES = sorted([*BENCH.glob("*.py"), *HARNESS.glob("*.py"), *STUDIES.glob("*.py")])


def _is_library(p: Path) -> bool:
    return p.parent == HARNESS or (p.parent == BENCH and p.name in LIBRARIES)


SCRIPTS = [p for p in ALL_FILES if not _is_library(p)]


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__"
                    for c in node.test.comparators))


def _harmless(node: ast.AST) -> bool:
    """Top-level statements that do no work when the file is imported."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef,
                         ast.Assign, ast.AnnAssign)):
        return True
    if isinstance(node, ast.Expr):
        v = node.value
        if isinstance(v, ast.Constant):  # the docstring
            return True
        # sys.path.insert(...) / sys.path.append(...)
        return (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute)
                and ast.unparse(v.func.value) == "sys.path")
    if isinstance(node, ast.If):  # `if __package__ in (None, ""): sys.path.insert(...)`
        return _is_main_guard(node) or ("__package__" in ast.unparse(node.test)
                                        and all(_harmless(n) for n in node.body + node.orelse))
    return False


def test_the_lists_match_the_folder():
    names = {p.name for p in BENCH.glob("*.py")}
    assert LIBRARIES <= names, LIBRARIES - names
    assert {"__init__.py", "schema.py", "codecs.py", "runs.py"} <= {p.name for p in HARNESS.glob("*.py")}
    assert set(RUNNERS) <= names, set(RUNNERS) - names
    assert [p for p in SCRIPTS if p.parent == STUDIES], "no studies found"
    assert not (BENCH / "experiments").exists(), "one-off studies leave the tree (git keeps them)"


@pytest.mark.parametrize("path", ALL_FILES, ids=_rel)
def test_no_work_at_import(path):
    """Module level: imports, definitions, constants, sys.path set-up and a __main__ guard;
    a script's work runs from main(), so importing it (or --help) costs nothing."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [f"line {n.lineno}: {ast.unparse(n).splitlines()[0]}" for n in tree.body
           if not _harmless(n)]
    assert not bad, f"{_rel(path)} runs code at import time:\n" + "\n".join(bad)
    has_main = any(_is_main_guard(n) for n in tree.body)
    if _is_library(path):
        assert not has_main, f"{_rel(path)} is a library module; scripts go elsewhere"
    else:
        assert has_main, f"{_rel(path)} has no `if __name__ == \"__main__\":` entry"
        assert ast.get_docstring(tree), f"{_rel(path)} has no docstring (what it measures)"


@pytest.mark.parametrize("name", ["benchmarks", "benchmarks.harness", "benchmarks.bd",
                                  "benchmarks.report", "benchmarks.harness.schema",
                                  "benchmarks.harness.images", "benchmarks.harness.codecs",
                                  "benchmarks.harness.runs", "benchmarks.harness.curves",
                                  "benchmarks.paper_report", "benchmarks.speed_latent",
                                  "benchmarks.speed_weights"])
def test_library_modules_import(name):
    mod = importlib.import_module(name)
    if name == "benchmarks.harness":
        for attr in ("dev_set", "dev_images", "centre_crop", "load_images", "run",
                     "make_codec", "load_result"):
            assert callable(getattr(mod, attr)), attr


@contextlib.contextmanager
def _as_script(path: Path, argv: list[str]):
    """sys.argv and sys.path as `python PATH ARGV...` has them; restored afterwards, and
    modules imported from benchmarks/ as top-level names (`import harness`) forgotten."""
    old_argv, old_path, old_mods = sys.argv[:], sys.path[:], set(sys.modules)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.parent))
    try:
        yield
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
        for name in set(sys.modules) - old_mods:
            f = getattr(sys.modules[name], "__file__", None) or ""
            if f.startswith(str(BENCH)) and not name.startswith("benchmarks"):
                del sys.modules[name]


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_help(path):
    """`python SCRIPT --help` prints a usage and exits 0 (imports included)."""
    out = io.StringIO()
    with _as_script(path, ["--help"]), contextlib.redirect_stdout(out), \
            pytest.raises(SystemExit) as exc:
        runpy.run_path(str(path), run_name="__main__")
    assert exc.value.code in (0, None), out.getvalue()
    assert "usage:" in out.getvalue()


@pytest.mark.parametrize("name", RUNNERS)
def test_runner_help_subprocess(name, tmp_path):
    """The runners as a user starts them, from another working directory."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(BENCH / name), "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "usage:" in r.stdout


_PATH_RE = re.compile(r"benchmarks/(?:results|models)/[A-Za-z0-9_.*/-]*[A-Za-z0-9_*/]")


def _exists(rel: str) -> bool:
    """A results path as the docs write it: a file, a folder, a glob, or an --out prefix
    (`--out benchmarks/results/sparse-vs-narrow` writes .json and .md)."""
    return bool(list(ROOT.glob(rel))) or bool(list(ROOT.glob(rel.rstrip("/") + "*")))


@pytest.mark.parametrize("path", [p for p in SCRIPTS if p.parent == STUDIES], ids=_rel)
def test_study_points_at_its_result(path):
    """Each study says what it produced, and the files it names are there."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert re.search(r"^Result", doc, re.M), f"{_rel(path)}: no 'Result...' line in the docstring"
    missing = [p for p in _PATH_RE.findall(doc) if not _exists(p)]
    assert not missing, f"{_rel(path)} names missing files: {missing}"


RESULTS, MODELS = BENCH / "results", BENCH / "models"
INDEX = RESULTS / "README.md"
REMOVED = "## Removed in"  # the index's last section: files that left the tree (git has them)
MAX_BYTES = 4 * 2 ** 20


def _index_names(text: str) -> set[str]:
    """Backquoted file names and globs of the index (`rd-jpeg.json`, `models/dense-narrow/w*.log.jsonl`)."""
    return set(re.findall(r"`([A-Za-z0-9_.*/-]+\.(?:json|jsonl|md|png|txt|safetensors))`", text))


def _current_index() -> str:
    text = INDEX.read_text()
    assert REMOVED in text, f"the index has no '{REMOVED} ...' section"
    return text[:text.index(REMOVED)]


def test_results_index_names_existing_files():
    """Every file the index cites (outside its section on removed files) is there."""
    names = _index_names(_current_index())
    assert names
    missing = [n for n in names if not (list(RESULTS.glob(n)) or list(BENCH.glob(n))
                                        or list(ROOT.glob(n)))]
    assert not missing, f"benchmarks/results/README.md names missing files: {missing}"


def _kept_files() -> list[Path]:
    return sorted(p for d in (RESULTS, MODELS) for p in d.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_results_index_cites_every_file_and_the_folders_stay_small():
    """results/ and models/ hold only what the index cites (by its path under results/, or
    as models/..., or from the repository root; globs allowed), under 4 MB together."""
    names = _index_names(_current_index())
    uncited = []
    for p in _kept_files():
        if p == INDEX:
            continue
        forms = {str(p.relative_to(RESULTS)) if RESULTS in p.parents else None,
                 str(p.relative_to(BENCH)), str(p.relative_to(ROOT))} - {None}
        if not any(fnmatch.fnmatchcase(f, n) for f in forms for n in names):
            uncited.append(str(p.relative_to(ROOT)))
    assert not uncited, f"files not cited by benchmarks/results/README.md: {uncited}"
    total = sum(p.stat().st_size for p in _kept_files())
    assert total < MAX_BYTES, f"benchmarks/results and models hold {total} bytes (limit {MAX_BYTES})"


_ABSOLUTE = re.compile(r"(?:^|[\s=,'\"(])(?:/[A-Za-z0-9_.~-]|~/)")


def _recorded_commands(obj) -> list[str]:
    """Every `command` / `commands` value anywhere in a results file (runs nest them)."""
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            if k in ("command", "commands"):
                out += [c for c in (v if isinstance(v, list) else [v]) if isinstance(c, str)]
            else:
                out += _recorded_commands(v)
        return out
    if isinstance(obj, list):
        return [c for x in obj for c in _recorded_commands(x)]
    return []


def test_recorded_commands_have_no_machine_paths():
    """The commands the kept results record name repository paths relative to its root,
    development photos as dev:NAME, other files by name: no absolute paths."""
    bad, n = [], 0
    for p in _kept_files():
        if p.suffix not in (".json", ".jsonl"):
            continue
        text = p.read_text()
        docs = [json.loads(line) for line in text.splitlines() if line.strip()] \
            if p.suffix == ".jsonl" else [json.loads(text)]
        for c in (c for d in docs for c in _recorded_commands(d)):
            n += 1
            if _ABSOLUTE.search(c):
                bad.append(f"{p.relative_to(ROOT)}: {c[:200]}")
    assert n > 100, n  # the scan sees the recorded commands
    assert not bad, "absolute paths in recorded commands:\n" + "\n".join(bad)
