"""The README and docs/*.md: every relative link and image resolves (file, and #anchor in Markdown files)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)


def _prose(text: str) -> str:
    """`text` without fenced code blocks and inline code (links there are examples, not links)."""
    return _CODE.sub("", _FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Every relative link or image of Markdown file `path` that does not resolve, with the reason."""
    text = _prose(path.read_text(encoding="utf-8"))
    targets = _LINK.findall(text) + _REF.findall(text) + _HTML_SRC.findall(text)
    bad = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue  # http:, https:, mailto: ...: not checked here (no network in tests)
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no such file ({dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and unquote(anchor).lower() not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    assert broken_links(doc) == []


def test_docs_exist_and_are_linked_from_readme():
    docs = {p.name for p in DOCS[1:]}
    assert {"evaluation.md", "gallery.md", "training.md"} <= docs
    readme = _prose((ROOT / "README.md").read_text(encoding="utf-8"))
    for name in docs:
        assert f"](docs/{name}" in readme, f"README does not link docs/{name}"


def test_the_checker_fails_on_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# A title, with `code`\n\n## Twice\n\n## Twice\n", encoding="utf-8")
    (tmp_path / "pic.png").write_bytes(b"")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n"
        "[ok](there.md) [ok](there.md#a-title-with-code) [ok](there.md#twice-1) ![ok](pic.png) [ok](#doc)\n"
        "[ok](https://example.org/missing.md) `[not a link](nowhere.md)`\n"
        "```\n[in code](nowhere.md)\n```\n"
        "[bad](missing.md) ![bad](missing.png) [bad](there.md#nope) [bad](#nope) [bad](there.md#twice-2)\n"
        "[ref]: gone.md\n",
        encoding="utf-8",
    )
    assert [b.split(":")[0] for b in broken_links(doc)] == [
        "missing.md", "missing.png", "there.md#nope", "#nope", "there.md#twice-2", "gone.md"]


def test_readme_starts_with_the_two_commands_and_shows_the_picture():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = _FENCE.search(text).group(0).splitlines()
    assert first_block[1].startswith("bash scripts/demo.sh ")
    assert first_block[2].startswith("bash scripts/test.sh ")
    assert "](docs/match.png)" in text
    size = (ROOT / "docs" / "match.png").stat().st_size
    assert 0 < size <= 200_000, f"docs/match.png is {size} bytes (at most 200 KB)"
    assert len(text.splitlines()) <= 150


def test_docs_quote_the_shipped_thresholds():
    """Examples of the output (`"threshold": X`, `(threshold X)`) show the shipped card's thresholds."""
    import json

    card = json.loads((ROOT / "artifacts" / "model" / "model_card.json").read_text())
    shipped = {round(card["threshold"], 3), round(card["threshold_masked"], 3), round(card["verify_threshold"]["threshold"], 3)}
    for doc in (ROOT / "README.md", ROOT / "docs" / "gallery.md", ROOT / "docs" / "deploy.md"):
        for m in re.finditer(r'"threshold": (-?[\d.]+)|\(threshold (-?[\d.]+)\)', doc.read_text(encoding="utf-8")):
            assert round(float(m.group(1) or m.group(2)), 3) in shipped, (doc.name, m.group(0))
