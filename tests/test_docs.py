"""The documentation cannot drift from the code unnoticed.

Every ``ncpx ...`` command line quoted in README.md and docs/*.md must name a command the typer app in
``node/cli.py`` has, with options that command takes; every relative link must reach an existing file (and
heading, when it names one); and the refusal table of docs/protocol.md must give each code the HTTP status and
retry behaviour its error class in ``protocol/errors.py`` has.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from node.cli import app
from protocol.errors import ALL_ERRORS, error_for_code

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

PENDING: frozenset[str] = frozenset()
"""Commands (and top-level options) that other parts of issue 12 add in parallel branches and the docs already
point to. Empty this set when those branches are merged: from then on their lines are checked like the rest."""

_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Quoted:
    """One ``ncpx`` command line as a document quotes it."""

    document: str
    text: str

    def __str__(self) -> str:
        return f"{self.document}: {self.text}"


def _command_tree() -> Any:
    """The click command typer builds from ``node.cli.app``: what ``ncpx`` actually accepts."""
    return typer.main.get_command(app)


def _options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"--help"}


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in an illustrative line: words are still words
        return text.split()


def _option(word: str) -> str | None:
    """The option a word names, without the optional-brackets and punctuation prose wraps it in."""
    word = word.strip("[](),;")
    if not word.startswith("-") or word in ("-", "--") or word.lstrip("-")[:1].isdigit():
        return None
    return word.split("=", 1)[0]


def check_command(text: str, tree: Any) -> str | None:
    """Why the command line ``text`` (starting with ``ncpx``) is not one ncpx accepts, or None if it is."""
    words = _words(text)
    if not words or words[0] != "ncpx":
        return "does not start with ncpx"
    command, path = tree, ["ncpx"]
    for word in words[1:]:
        subcommands = getattr(command, "commands", None)
        option = _option(word)
        if option is not None:
            if option not in _options(command):
                return f"{' '.join(path)} has no option {option}"
            continue
        if not subcommands:
            continue  # an argument or an option's value
        if word in ("...", "…"):
            return None
        if word not in subcommands:
            return f"{' '.join(path)} has no subcommand {word!r}"
        command = subcommands[word]
        path.append(word)
    return None


def _pending(text: str) -> bool:
    words = _words(text)
    return len(words) > 1 and words[1] in PENDING


def quoted_commands(document: Path, root: Path = ROOT) -> Iterator[Quoted]:
    """``ncpx`` lines in fenced blocks (after an optional ``$`` prompt, with ``\\`` continuations joined) and
    inline code spans that start with ``ncpx``."""
    name = str(document.relative_to(root))
    text = document.read_text(encoding="utf-8")
    for fence in _FENCE.finditer(text):
        for line in fence.group(2).replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ").strip()
            if line.startswith("ncpx "):
                yield Quoted(name, line)
    prose = _FENCE.sub("", text)
    for span in _SPAN.finditer(prose):
        content = " ".join(span.group(2).split())
        if content.startswith("ncpx ") or content == "ncpx":
            yield Quoted(name, content)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    plain = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Anchors of a Markdown file's headings (outside fenced blocks)."""
    return {_slug(h) for h in _HEADING.findall(_FENCE.sub("", document.read_text(encoding="utf-8")))}


def broken_links(document: Path) -> list[str]:
    """Relative links of ``document`` whose file, or whose heading in a Markdown file, does not exist."""
    problems = []
    prose = _FENCE.sub("", document.read_text(encoding="utf-8"))
    prose = _SPAN.sub("", prose)
    for target in _LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: and the like
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no such heading")
    return problems


ALL_QUOTED = [q for d in DOCUMENTS for q in quoted_commands(d)]


def test_the_documents_exist_and_quote_commands() -> None:
    names = {d.name for d in DOCUMENTS}
    assert {"README.md", "threat-model.md", "protocol.md", "operator-guide.md"} <= names
    per_document = {q.document for q in ALL_QUOTED}
    assert {"README.md", "docs/operator-guide.md"} <= per_document


@pytest.mark.parametrize("quoted", [q for q in ALL_QUOTED if not _pending(q.text)], ids=str)
def test_quoted_command_exists(quoted: Quoted) -> None:
    assert check_command(quoted.text, _command_tree()) is None, check_command(quoted.text, _command_tree())


def test_the_check_refuses_what_ncpx_does_not_accept() -> None:
    tree = _command_tree()
    assert check_command("ncpx keys rotate --dir /srv/ncpx/keys --certificate", tree) is None
    assert check_command('ncpx officer add "Somchai P." -c /srv/ncpx/node.toml', tree) is None
    assert check_command("ncpx period amend --name N [--start] [--end]", tree) is None
    assert check_command("ncpx keys renew --dir k", tree) == "ncpx keys has no subcommand 'renew'"
    assert check_command("ncpx keys rotate --cert", tree) == "ncpx keys rotate has no option --cert"
    assert check_command("ncpx frobnicate", tree) == "ncpx has no subcommand 'frobnicate'"
    assert check_command("ncpx --verbose inbox", tree) == "ncpx has no option --verbose"


def test_pending_commands_are_not_yet_in_the_cli() -> None:
    """Once a pending command exists, it leaves the pending set so that its lines are checked too."""
    tree = _command_tree()
    assert not (PENDING & set(tree.commands)), "these commands exist now: remove them from PENDING"
    assert not (PENDING & _options(tree)), "these options exist now: remove them from PENDING"


def test_quoted_lines_are_found_in_fences_spans_and_continuations(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `ncpx inbox --wide` or ``ncpx sent``.\n\n```sh\n$ ncpx roster add --roster r.json \\\n"
        "    --card c.json   # a comment\nexport X=1\n```\n",
        encoding="utf-8",
    )
    found = [q.text for q in quoted_commands(page, tmp_path)]
    assert found == [
        "ncpx roster add --roster r.json      --card c.json   # a comment",
        "ncpx inbox --wide",
        "ncpx sent",
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_relative_links_point_to_existing_files(document: Path) -> None:
    assert broken_links(document) == []


def test_the_link_check_finds_missing_files_and_headings(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Back up and restore\n", encoding="utf-8")
    page.write_text(
        "# Title\n[a](other.md#back-up-and-restore) [b](#title) [c](https://example.org/x)\n"
        "[d](missing.md) [e](other.md#monitoring) ![f](gone.png) `[g](inside-code.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#monitoring: no such heading",
        "gone.png: no such file",
    ]


_ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|\s*(retried|final)\s*\|", re.MULTILINE)


def test_protocol_refusal_table_matches_the_error_classes() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    rows = _ROW.findall(text)
    assert len(rows) >= 20
    known = {cls.code for cls in ALL_ERRORS}
    for code, status, behaviour in rows:
        assert code in known, f"{code} is not an error code"
        cls = error_for_code(code)
        assert (int(status), behaviour == "retried") == (cls.status, cls.retryable), code
