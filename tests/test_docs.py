"""Every Python code block of the docs pages runs, in order, in one namespace per page."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["docs/measuring.md", "README.md"]


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, capsys):
    pytest.importorskip("e3nn")
    pytest.importorskip("torch_harmonics")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)
    assert blocks, f"{page} has no python code blocks"
    old = torch.get_default_dtype()
    namespace: dict = {}
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"{page}[block {i}]", "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        torch.set_default_dtype(old)


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


def test_api_reference_builds_without_warnings(tmp_path):
    """``make docs``: Sphinx over the docstrings with warnings as errors."""
    sphinx = pytest.importorskip("sphinx.cmd.build")
    code = sphinx.build_main(["-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs" / "api"), str(tmp_path / "html")])
    assert code == 0 and (tmp_path / "html" / "measure.html").is_file()
    assert "equivariance_error" in (tmp_path / "html" / "measure.html").read_text()
