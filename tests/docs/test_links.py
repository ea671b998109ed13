"""README and docs/ link only to files inside the repository, and those files exist."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_point_to_files_in_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if target.startswith("#"):
            continue
        assert "://" not in target or page.name != "README.md", f"{page.name}: README links outside: {target}"
        if "://" in target:
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"


def test_readme_names_no_file_outside_the_repository():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in text and "DESIGN.md" not in text


def test_readme_links_the_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/job-file.md", "docs/file-formats.md", "docs/parallel-model.md", "docs/architecture.md",
                 "LICENSE", "CITATION.cff", "CHANGELOG.md"):
        assert f"]({page})" in text, page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_modules_functions_and_files_exist(page):
    """`hpc_rg.x.y` names in the page import (longest module prefix, then attributes); `hpc_rg/...py` paths
    exist. Keeps the docs honest when code moves."""
    text = page.read_text(encoding="utf-8")
    for dotted in sorted(set(re.findall(r"(?<![\w/])(hpc_rg(?:\.\w+)+)(?![\w/])", text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{page.name}: {dotted} does not exist"
            obj = getattr(obj, attr)
    for path in sorted(set(re.findall(r"(?<![\w/.])(hpc_rg/[\w/]+\.py)", text))):
        assert (ROOT / path).exists(), f"{page.name}: {path} does not exist"
