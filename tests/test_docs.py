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
