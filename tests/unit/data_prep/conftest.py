"""Fixtures of the dataset-script tests (helpers live in prep_release.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prep_release import IWSLT_TEST_SETS, iwslt_train_side, make_tgz, xml_doc


@pytest.fixture
def iwslt_release(tmp_path: Path) -> Path:
    """A folder holding a fake ``de-en.tgz`` with the IWSLT14 release layout.

    Per side: 3 talks x (title + description + 20 sentences) = 66 text lines, of which one
    pair (talk 1, sentence 5) has a German side 3x longer than English and must be cleaned.
    """
    members: dict[str, list[str]] = {}
    for lang in ("de", "en"):
        side = iwslt_train_side(lang)
        if lang == "de":
            side = [s + " lang" * 12 if "talk 1 sentence 5 " in s else s for s in side]
        members[f"de-en/train.tags.de-en.{lang}"] = side
        for k, name in enumerate(IWSLT_TEST_SETS):
            segs = [f"{lang} {name} seg {i} Tom &amp; Jerry’s" for i in range(k + 1)]
            members[f"de-en/{name}.de-en.{lang}.xml"] = xml_doc(segs)
    make_tgz(tmp_path / "raw" / "de-en.tgz", members)
    return tmp_path / "raw"
