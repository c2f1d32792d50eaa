"""The documentation holds together: every relative link and picture in README.md and docs/*.md leads to a file
that exists (and, into a Markdown file, to a heading that exists, slugged as GitHub does), and the README stays
the front door: the two commands, and the way to the architecture and the other pages."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "docs" / "deploy").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](target) and ![alt](target); the text may hold one level of brackets (an image inside a link).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script, digits, `_` and `-`
    kept), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the headings of `path` give, repeated headings numbered -1, -2 … as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2).replace("`", ""))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """What is wrong with the relative links and pictures of the Markdown file `path`, one line per problem."""
    problems = []
    text = path.read_text(encoding="utf-8")
    for number, line in _prose_lines(text):
        for target in LINK.findall(CODE_SPAN.sub("", line)):  # `[x](y)` in code is no link
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: … are not ours to check
                continue
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {target}"
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{where}: no such file")
                continue
            if anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
                problems.append(f"{where}: no heading with this anchor in {linked.name}")
    return problems


def test_the_documents_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in DOCUMENTS}
    assert {"README.md", "docs/features.md", "docs/administration.md", "docs/api.md", "docs/architecture.md",
            "docs/benchmarks.md"} <= names


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_picture_leads_somewhere(path):
    assert broken_links(path) == []


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    links = set(LINK.findall(readme))
    assert "docs/architecture.md" in links
    # Every page under docs/ can be reached from the README.
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert any(link.partition("#")[0] == f"docs/{page.name}" for link in links), page.name


def test_every_picture_in_docs_screens_is_shown_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = {link for link in LINK.findall(readme) if link.startswith("docs/screens/")}
    stored = {f"docs/screens/{p.name}" for p in (ROOT / "docs" / "screens").glob("*.png")}
    assert stored <= shown, sorted(stored - shown)


def test_the_check_finds_a_broken_link_a_missing_picture_and_a_missing_heading(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Behind a reverse proxy\n\n## Łódź `code` (beta)\n"
                                                 "## Twice\n## Twice\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](docs/other.md#behind-a-reverse-proxy) [ok](docs/other.md#łódź-code-beta) [ok](docs/other.md#twice-1)\n"
        "[ok](#page) [ok](https://example.com/nowhere) `[not a link](missing.md)`\n"
        "```\n[inside a fence](missing-too.md)\n# not a heading\n```\n"
        "[gone](docs/gone.md) ![picture](docs/screens/none.png) [bad anchor](docs/other.md#monitoring)\n"
        "[bad local anchor](#not-a-heading)\n",
        encoding="utf-8")
    problems = broken_links(page)
    assert len(problems) == 4, problems
    assert any("docs/gone.md: no such file" in p for p in problems)
    assert any("docs/screens/none.png: no such file" in p for p in problems)
    assert any("docs/other.md#monitoring: no heading" in p for p in problems)
    assert any("#not-a-heading: no heading" in p for p in problems)
