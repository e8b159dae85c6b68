"""A fresh clone has nothing beside it: no file of the repository may read anything outside it.

Every file under tests/, bench/, examples/, meshctl/ and templates/ (and the Makefile,
pyproject.toml and README.md) is scanned for mentions of the development machine's shared
folder, and every Python file's syntax tree for paths built from `__file__` that climb above the
repository root (`parents[k]`, `.parent` chains, `".."` path parts). A fixture a test needs is
copied into the repository instead, with its source and licence in its folder's README.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("tests", "bench", "examples", "meshctl", "templates")
TOP_FILES = ("Makefile", "pyproject.toml", "README.md")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

# Spelled in pieces so that this file does not mention what it forbids.
DOTDOT = "." + "."
FORBIDDEN_TEXT = [
    re.compile(re.escape(DOTDOT) + r"[/\\]+shared\b"),  # a sibling "shared" folder
    re.compile(r"/" + "work" + r"/"),  # the development machine's layout (its shared and main folders)
]


@dataclass(frozen=True)
class Escape:
    """One way a file reaches outside the repository."""

    path: str
    line: int
    what: str


def text_escapes(rel: str, text: str) -> list[Escape]:
    """Mentions of a path outside the repository in any text file."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        for pattern in FORBIDDEN_TEXT:
            m = pattern.search(line)
            if m:
                found.append(Escape(rel, n, f"mentions {m.group(0)!r}: {line.strip()[:120]}"))
    return found


def _mentions_file(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node))


def _parent_chain(node: ast.AST) -> int:
    """How many `.parent` attributes end this expression (`x.parent.parent` -> 2)."""
    count = 0
    while isinstance(node, ast.Attribute) and node.attr == "parent":
        count += 1
        node = node.value
    return count


def python_escapes(rel: str, source: str) -> list[Escape]:
    """Paths built from `__file__` that climb above the repository root, and `".."` path parts."""
    depth = len(Path(rel).parts) - 1  # folders between the repository root and the file
    tree = ast.parse(source, filename=rel)
    found = []
    for node in ast.walk(tree):
        # Path(__file__)...parents[k]: parents[depth] is the root, anything higher is outside
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "parents" and _mentions_file(node.value)
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)
                and node.slice.value > depth):
            found.append(Escape(rel, node.lineno, f"parents[{node.slice.value}] of a file {depth} folders deep"))
        # Path(__file__).parent.parent...: the (depth + 1)th parent is the root
        if (isinstance(node, ast.Attribute) and node.attr == "parent" and _mentions_file(node)
                and _parent_chain(node) > depth + 1):
            found.append(Escape(rel, node.lineno, f"{_parent_chain(node)} .parent steps from a file {depth} folders deep"))
        # some_path / ".." or os.path.join(..., "..", ...): climbing by hand
        parts: list[ast.expr] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [node.left, node.right]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("join", "joinpath"):
            parts = list(node.args)
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and (
                    part.value == DOTDOT or part.value.startswith((DOTDOT + "/", DOTDOT + "\\"))):
                found.append(Escape(rel, node.lineno, f"a {part.value!r} path part"))
    return found


def repository_files() -> list[Path]:
    files = [REPO / name for name in TOP_FILES if (REPO / name).is_file()]
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(REPO).parts):
                files.append(path)
    return files


def test_no_file_reaches_outside_the_repository() -> None:
    escapes: list[Escape] = []
    texts = pythons = 0
    for path in repository_files():
        rel = path.relative_to(REPO).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary fixtures (tarballs, images) name no paths
        texts += 1
        escapes += text_escapes(rel, text)
        if path.suffix == ".py":
            pythons += 1
            escapes += python_escapes(rel, text)
    # the scan saw the repository, not an empty or mislocated folder
    assert pythons > 200 and texts - pythons > 40, (pythons, texts)
    assert (REPO / "meshctl" / "__init__.py").is_file() and (REPO / "pyproject.toml").is_file()
    assert escapes == [], "\n".join(f"{e.path}:{e.line}: {e.what}" for e in escapes)


BAD = "/" + "work" + "/shared/fixtures"


@pytest.mark.parametrize("rel, source", [
    ("tests/template/t.py", 'X = Path(__file__).resolve().parents[2] / ".." / "shared"'),
    ("tests/registrator/d.py", 'X = Path(__file__).resolve().parents[3] / "shared" / "fixtures"'),
    ("tests/t.py", "X = Path(__file__).parent.parent.parent / 'x'"),
    ("bench/b.py", f'X = os.path.join(os.path.dirname(__file__), "{DOTDOT}/{DOTDOT}/shared")'),
])
def test_the_checker_catches_paths_that_climb_out(rel: str, source: str) -> None:
    assert python_escapes(rel, source) != []


@pytest.mark.parametrize("text", [f'FIXTURES = Path("{BAD}")', "see " + DOTDOT + "/shared/reference/tools.md"])
def test_the_checker_catches_mentions_of_the_shared_folder(text: str) -> None:
    assert text_escapes("tests/x.md", text) != []


@pytest.mark.parametrize("rel, source", [
    ("tests/registrator/doubles.py", 'FIXTURES = Path(__file__).resolve().parent / "fixtures"'),
    ("tests/registrator/conftest.py", "REPO = Path(__file__).resolve().parents[2]"),
    ("tests/conftest.py", "REPO = Path(__file__).parent.parent"),
    ("meshctl/server/http/kv.py", 'bad = ".." in key.split("/")'),
])
def test_the_checker_allows_paths_inside_the_repository(rel: str, source: str) -> None:
    assert python_escapes(rel, source) == []
