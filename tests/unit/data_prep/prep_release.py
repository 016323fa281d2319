"""Fabricated release files for the dataset-script tests: the real layouts, a few lines each."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def write_text(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` to ``path`` (gzipped when it ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def make_tgz(archive: Path, members: dict[str, list[str]]) -> Path:
    """A .tgz whose members (paths inside the archive) hold the given lines."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, lines in members.items():
            data = "".join(line + "\n" for line in lines).encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def xml_doc(segs: list[str], *, sgm: bool = False) -> list[str]:
    """An IWSLT-style XML (or WMT-style SGM) file with one talk holding ``segs``."""
    head = ['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", '<srcset setid="x">']
    if sgm:
        head = ['<srcset setid="newstest2014" srclang="any">']
    lines = [*head, '<doc docid="1" genre="lectures">', "<url>http://example.org/talk</url>"]
    lines += ["<keywords>a,b</keywords>", "<talkid>1</talkid>", "<title>A talk</title>"]
    lines += [f'<seg id="{i}"> {s} </seg>' for i, s in enumerate(segs, start=1)]
    return [*lines, "</doc>", "</srcset>"] + ([] if sgm else ["</mteval>"])


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


IWSLT_TEST_SETS = (
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
)


def iwslt_train_side(lang: str, n_talks: int = 3, per_talk: int = 20) -> list[str]:
    """train.tags lines: metadata per talk, then ``per_talk`` numbered sentences."""
    lines = []
    for t in range(n_talks):
        lines += [f"<url>http://www.ted.com/talks/{t}.html</url>", f"<keywords>k{t}</keywords>"]
        lines += [f"<speaker>Speaker {t}</speaker>", f"<talkid>{t}</talkid>"]
        lines += [
            f"<title>{lang} title {t}</title>",
            f"<description>{lang} about {t}</description>",
        ]
        lines += [f'<reviewer href="http://www.ted.com/profiles/{t}">R</reviewer>']
        lines += [f"  {lang} talk {t} sentence {i} word word  " for i in range(per_talk)]
    return lines
