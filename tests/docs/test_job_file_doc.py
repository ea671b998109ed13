"""docs/job-file.md is generated from the specs and must match them; `hpc-rg check --explain` documents a job."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from hpc_rg import config, docs_gen
from hpc_rg.cli import main
from hpc_rg.learn.specs import SPECS as TRAIN
from hpc_rg.reduce.specs import SPECS as ANALYZE

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted((ROOT / "jobs").glob("*.toml"))


def test_committed_job_file_doc_is_current():
    committed = docs_gen.DOC_PATH.read_text(encoding="utf-8")
    assert committed == docs_gen.render_markdown(), (
        f"docs/job-file.md is out of date with the specs: run `{docs_gen.REGENERATE}` and commit the result")


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "job-file.md"
    stale.write_text("# old\n")
    assert docs_gen.main(["--check", "--out", str(stale)]) == 1
    assert docs_gen.REGENERATE in capsys.readouterr().err
    assert stale.read_text() == "# old\n"          # --check writes nothing
    assert docs_gen.main(["--out", str(stale)]) == 0
    assert docs_gen.main(["--check", "--out", str(stale)]) == 0


def _all_spec_classes():
    yield "[job]", config.JobConfig
    yield "[simulate]", config.SimulateConfig
    for kind, cls in TRAIN.items():
        yield f'[train.<name>] with kind = "{kind}"', cls
    for name, cls in ANALYZE.items():
        yield f"[analyze.{name}]", cls


def _section(text: str, header: str) -> str:
    start = text.index(f"## `{header}`")
    nxt = text.find("\n## ", start + 1)
    return text[start:nxt if nxt > 0 else None]


@pytest.mark.parametrize("header,cls", list(_all_spec_classes()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_spec_field_is_in_its_section_with_its_doc(header, cls):
    section = _section(docs_gen.render_markdown(), header)
    for f in dataclasses.fields(cls):
        doc = f.metadata.get("doc", "")
        assert doc, f"{cls.__name__}.{f.name} has no doc= text"
        row = re.search(rf"^\| `{re.escape(f.name)}` \|.*$", section, re.M)
        assert row, f"{header}: key {f.name} missing"
        assert docs_gen._cell(" ".join(doc.split())) in row.group(0)


def test_defaults_and_bounds_are_shown():
    text = _section(docs_gen.render_markdown(), "[simulate]")
    assert re.search(r"^\| `L` \| integer \| \(required\) \| >= 2 \|", text, re.M)
    assert re.search(r'^\| `algorithm` \| string \| `"metropolis"` \|', text, re.M)
    assert re.search(r'^\| `compression` \| "none" \\\| "gzip" \\\| "lzf" \|', text, re.M)
    report = _section(docs_gen.render_markdown(), "[report]")
    assert "seed001" in report                        # the allowed papers come from the registry


def _explain_lines(capsys, job: Path) -> str:
    assert main(["check", "--explain", str(job)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_explain_is_the_resolved_job_with_a_comment_per_key(job, capsys):
    text = _explain_lines(capsys, job)
    cfg = config.load(job)
    # valid TOML that resolves to the same job (kind included, so renamed train tables survive)
    again = config.loads(text, job)
    assert again.as_dict() == cfg.as_dict()
    assert tomllib.loads(text)                          # plain TOML, no hpc_rg needed to read it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\w+ = ", line):
            assert lines[i - 1].startswith("# "), f"no comment above {line!r}"


def test_explain_names_docs_and_defaults(capsys):
    text = _explain_lines(capsys, ROOT / "jobs" / "quickstart.toml")
    assert "# linear size (sites per side)  [integer; >= 2; required]\nL = 16" in text
    assert 'ladder = "fixed"' in text and '"fixed" | "tune"; default "fixed"' in text
    assert "docs/job-file.md" in text
