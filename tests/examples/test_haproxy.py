"""examples/haproxy/run.py end to end: the real haproxy, reloaded by `meshctl template -exec`."""

from __future__ import annotations

import pytest

from .scenario import ROOT, Example, assert_all_stopped, run_scenario

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "examples" / "haproxy" / "run.py"


@pytest.mark.parametrize("syntax", ["go", "jinja"])
def test_haproxy_follows_the_catalog(tmp_path, syntax):
    example = Example(SCRIPT, tmp_path, "--syntax", syntax)
    try:
        run_scenario(example)
    finally:
        code = example.stop()
    assert_all_stopped(example, code)
