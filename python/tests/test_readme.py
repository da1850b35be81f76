"""The README's Python blocks run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_python_blocks_run() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 2, "the README has a Python example and the compat import"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
