"""The README's code blocks run as written."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    pytest.importorskip("snntorch")
    pytest.importorskip("spikingjelly.activation_based")
    exec(compile(code, str(README), "exec"), {})


def test_readme_has_the_two_setup_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text and len(BLOCKS) == 6
