"""The docs: every Python block runs alone and prints the same twice; every results table is what
the results produce; every config key is documented; the API reference builds without warnings."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")
                              if "_build" not in p.parts)]
# a python block, and the text block right after it when there is one: what it prints
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.S)
OPTIONAL = ("e3nn", "torch_harmonics", "escnn")


def _blocks():
    for page in PAGES:
        for i, m in enumerate(BLOCK.finditer((ROOT / page).read_text())):
            yield pytest.param(m.group(1), m.group(2), id=f"{page}[{i}]")


def test_the_pages_have_blocks_and_the_readme_shows_output():
    """Not vacuous: the pages hold blocks, and the README's "measure your model" shows its output."""
    blocks = list(_blocks())
    assert len(blocks) >= 10, [b.id for b in blocks]
    assert any(b.id.startswith("README.md") and b.values[1] for b in blocks)


@pytest.mark.parametrize("code,printed", list(_blocks()))
def test_code_block_runs_alone_and_prints_the_same_twice(code, printed, tmp_path):
    """Each block in a fresh interpreter, twice at once: exit 0, the same output both times, and the
    output the page shows after it (a ```text block) when it shows one."""
    for mod in OPTIONAL:
        if re.search(rf"^\s*(import|from) {mod}\b", code, flags=re.M):
            pytest.importorskip(mod)
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"the block failed on its own:\n{code}\n--- stderr:\n{err}"
    assert outs[0][0] == outs[1][0], f"two runs printed different output:\n{outs[0][0]}\n---\n{outs[1][0]}"
    if printed is not None:
        assert outs[0][0] == printed, f"the page shows:\n{printed}\nthe block prints:\n{outs[0][0]}"


def _tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "docs" / "tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_tables_are_what_the_results_produce():
    """Every generated table in the README and the results book equals what docs/tables.py makes of
    results/ (`python docs/tables.py` regenerates them; `make docs` runs it)."""
    tables = _tables()
    marked = [m.group("name") for page in tables.PAGES for m in tables.MARK.finditer((ROOT / page).read_text())]
    assert len(marked) >= 15 and set(marked) == set(tables.TABLES), sorted(set(tables.TABLES) ^ set(marked))
    assert tables.stale() == {}


def test_a_stale_table_is_caught(tmp_path):
    """The check compares numbers: a page whose table lost a digit is reported."""
    tables = _tables()
    page = "docs/results/cohen2018.md"
    text = (ROOT / page).read_text()
    m = re.search(r"(<!-- table: cohen2018 -->\n.*?)(\d)(\.\d)", text, flags=re.S)
    edited = text[:m.start(2)] + str((int(m.group(2)) + 1) % 10) + text[m.end(2):]
    assert tables.render(edited, ROOT / "results", {}) == text != edited


def test_config_reference_names_every_key():
    """docs/config.md covers every key of the schemas (a key added without documentation fails)."""
    from harness.nn.models import LAYER_TABLES, MODEL_SPEC
    from harness.runs.sweeps import BUILTIN_MODEL, FACTORY_MODEL, RUN, _sweep_schema
    from harness.runs.train import TRAIN_SCHEMA

    text = (ROOT / "docs" / "config.md").read_text()
    tables = [_sweep_schema(False), _sweep_schema(True), RUN, BUILTIN_MODEL, FACTORY_MODEL, TRAIN_SCHEMA]
    tables += [spec for t in (_sweep_schema(False), TRAIN_SCHEMA) for spec, _ in t.keys.values() if hasattr(spec, "keys")]
    tables += [spec for spec, _ in TRAIN_SCHEMA.keys["data"][0].keys.values() if hasattr(spec, "keys")]
    keys = {k for t in tables for k in t.keys} | set(MODEL_SPEC.keys) | {k for t in LAYER_TABLES.values() for k in t.keys}
    missing = sorted(k for k in keys if f"`{k}`" not in text and f"`[{k}]`" not in text)
    assert not missing, f"docs/config.md does not document {missing}"


def test_docs_build_without_warnings(tmp_path):
    """``make docs``: the guides, the results book (Markdown through myst) and the API reference from
    the docstrings, Sphinx with warnings as errors (a broken link or image between pages fails)."""
    pytest.importorskip("myst_parser")
    sphinx = pytest.importorskip("sphinx.cmd.build")
    code = sphinx.build_main(["-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")])
    assert code == 0 and (tmp_path / "html" / "api" / "measure.html").is_file()
    assert "equivariance_error" in (tmp_path / "html" / "api" / "measure.html").read_text()
    book = (tmp_path / "html" / "results" / "frontier.html").read_text()
    assert "frontier.png" in book and "meets the goal" in book  # the figure and the generated table
