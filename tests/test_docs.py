"""The reference docs name only what exists: every module, script, results file and model
they cite, every link (and its #anchor), every `inrcodec.x.y` name. The study logs
(docs/studies/) and the changelog are history and are not checked."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "bitstream_spec").glob("*.md")), ROOT / "inrcodec" / "models" / "README.md"]
# Pages that name history on purpose (the results index checks its own files:
# tests/test_benchmark_scripts.py); their links still must resolve.
LINKED = DOCS + [ROOT / "docs" / "studies" / "README.md", ROOT / "benchmarks" / "results" / "README.md"]
TOP = ("inrcodec", "benchmarks", "docs", "bitstream_spec", "tests")
# Where a path written relative to a package is found.
BASES = (ROOT, ROOT / "inrcodec", ROOT / "inrcodec" / "codec", ROOT / "benchmarks",
         ROOT / "benchmarks" / "results")
CITED = (".py", ".json", ".jsonl", ".png", ".md", ".safetensors", ".txt")
# Names the docs use for the user's own files in examples, not files of the tree.
PLACEHOLDERS = {"rd.json", "A.json", "B.json", "rd.png", "manifest.json", "photo.png",
                "a/b.png", "a/b.inr", "photos/", "encoded/", "decoded/",
                "photo.jpg", "photo.inr", "big.png", "hd.png", "astronaut.png",
                "astronaut.inr", "astronaut-decoded.png", "out.png", "x.inr", "y.inr",
                "crop.png", "crop.inr", "latent.safetensors", "weights.safetensors",
                "model.safetensors", "narrow.safetensors", "paper.safetensors",
                "expected.json"}
NAMES = {p.name for p in ROOT.rglob("*") if ".git" not in p.parts}


def _code_and_text(text: str) -> tuple[list[str], str]:
    """(the fenced code blocks' lines, the text with them removed)."""
    code, prose, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            code.append(line)
        else:
            prose.append(line)
    return code, "\n".join(prose)


def _paths(doc: Path) -> set[str]:
    code, prose = _code_and_text(doc.read_text())
    tokens = set(re.findall(r"`([^`\s]+)`", prose))
    tokens |= set(re.findall(r"`([^`\s]+):", prose))  # `file.py: Name`
    for line in code + re.findall(r"`([^`]+)`", prose):  # commands, in blocks and inline
        tokens |= {t for t in re.split(r"[\s=\"']+", line) if t.split("/")[0] in TOP}
    return {t.rstrip(".,;:)") for t in tokens}


def _exists(token: str, doc: Path) -> bool:
    path = token.split("::")[0].split("#")[0]
    for base in (doc.parent, *BASES):
        if (base / path).exists() or any((base / path).parent.glob(Path(path).name + ".*")):
            return True  # a file, or the prefix a command wrote its outputs under
    return "/" not in path and path in NAMES


def _cited(t: str) -> bool:
    """A token that names a file or folder of the tree (not an option, not a placeholder
    such as X.py or OUT in a command's description)."""
    if t in PLACEHOLDERS or re.search(r"[*{<]|\b(X|OUT|NAME|runN)\b", t):
        return False
    return t.split("/")[0] in TOP or t.endswith(CITED) or ("/" in t and not t.startswith("-"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_file_exists(doc):
    missing = []
    for t in sorted(_paths(doc)):
        if _cited(t) and not _exists(t, doc):
            missing.append(t)
    assert not missing, f"{doc.name} names what does not exist: {missing}"


def _slug(heading: str) -> str:
    s = heading.strip().lower().replace("`", "")
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_anchor_resolves(doc):
    _, prose = _code_and_text(doc.read_text())
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", _code_and_text(dest.read_text())[1], re.M)
            if anchor not in {_slug(h) for h in headings}:
                bad.append(target)
    assert not bad, f"{doc.name} links to what does not exist: {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_python_object_exists(doc):
    bad = []
    for name in sorted(set(re.findall(r"`(inrcodec(?:\.\w+)+)", doc.read_text()))):
        parts = name.split(".")
        for k in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:k]))
            except ImportError:
                continue
            try:
                for attr in parts[k:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(name)
            break
        else:
            bad.append(name)
    assert not bad, f"{doc.name} names Python objects that do not exist: {bad}"
