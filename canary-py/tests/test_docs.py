"""Every Python example of the README and the book runs, as a reader would paste it.

A block whose info string says ``python,no_run`` needs a live Prometheus or cluster and is only
compiled.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "src").rglob("*.md"))]
FENCE = re.compile(r"^( *)```python([^\n]*)\n(.*?)^\1```", re.S | re.M)


def examples():
    for page in PAGES:
        for match in FENCE.finditer(page.read_text()):
            indent, info, body = match.groups()
            code = "\n".join(line[len(indent):] for line in body.splitlines())
            line = page.read_text()[: match.start()].count("\n") + 1
            yield pytest.param(code, "no_run" in info, id=f"{page.relative_to(ROOT)}:{line}")


EXAMPLES = list(examples())


def test_the_book_has_python_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code,no_run", EXAMPLES)
def test_example_runs(code, no_run, capsys):
    compiled = compile(code, "<example>", "exec")
    if no_run:
        return
    exec(compiled, {"__name__": "__example__"})
    # An example that prints says something.
    if "print(" in code:
        assert capsys.readouterr().out.strip()
