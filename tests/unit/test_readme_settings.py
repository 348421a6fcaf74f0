"""The README's configuration table lists every setting, so an operator never has to read the
code to learn a knob exists."""

from __future__ import annotations

import re
from pathlib import Path

from hub.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_row_in_the_readme_table() -> None:
    rows = set(re.findall(r"^\| `(HUB_[A-Z0-9_]+)` \|", README.read_text(), flags=re.MULTILINE))
    expected = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    assert expected - rows == set(), "add these settings to the README's configuration table"
    assert rows - expected == set(), "these README rows name settings that no longer exist"
