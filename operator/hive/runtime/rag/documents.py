"""Files read into documents: plain text, a title, and the SHA-256 of the file's bytes.

Markdown and text are kept as they are (offsets point into the file's decoded text). HTML is
reduced to its visible text (scripts and styles dropped, blocks on lines of their own), PDF to
the text pypdf extracts page by page; their offsets point into that extracted text. The title
is the first Markdown heading, the HTML ``<title>`` (or first ``<h1>``), the PDF's metadata
title, else the file name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from hive.errors import InvalidInput, NotInstalled

MARKDOWN = frozenset({".md", ".markdown"})
TEXT = frozenset({".txt", ".text", ".rst"})
HTML = frozenset({".html", ".htm"})
PDF = frozenset({".pdf"})
SUPPORTED = MARKDOWN | TEXT | HTML | PDF


@dataclass(frozen=True)
class Document:
    source: str  # the file's absolute path
    title: str
    text: str
    content_hash: str  # SHA-256 of the file's bytes, hex


def read_document(path: Path) -> Document:
    """The document in `path`; an unsupported suffix or unreadable file is InvalidInput."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise InvalidInput(
            str(path), f"unsupported file type {suffix or '(none)'} (known: {known})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read ({exc.strerror or exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    source = str(path.resolve())
    if suffix in PDF:
        title, text = _pdf(path)
    else:
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(str(path), f"is not UTF-8 text ({exc.reason})") from exc
        if suffix in HTML:
            title, text = _html(decoded)
        elif suffix in MARKDOWN:
            title, text = _markdown_title(decoded), decoded
        else:
            title, text = "", decoded
    return Document(source=source, title=title.strip() or path.name, text=text, content_hash=digest)


def collect_files(paths: list[Path]) -> list[Path]:
    """The supported files named, and those under the folders named (sorted, recursively)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED))
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(str(path), "no such file or folder")
    return files


def _markdown_title(text: str) -> str:
    match = re.search(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE)
    return match.group(1) if match else ""


class _VisibleText(HTMLParser):
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "pre",
            "blockquote",
            "table",
            "ul",
            "ol",
            "header",
            "footer",
            "dt",
            "dd",
        }
    )
    HIDDEN = frozenset({"script", "style", "head", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.first_h1 = ""
        self._hidden = 0
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.HIDDEN:
            self._hidden += 1
        if tag == "h1":
            self._in_h1 = True
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "h1":
            self._in_h1 = False
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._hidden:
            return
        if self._in_h1:
            self.first_h1 = self.first_h1 or data
        self.parts.append(data)


def _html(markup: str) -> tuple[str, str]:
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    raw = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    return (parser.title or parser.first_h1), text


def _pdf(path: Path) -> tuple[str, str]:
    try:
        import pypdf
    except ImportError as exc:
        raise NotInstalled("pypdf (PDF documents)", "make venv") from exc
    try:
        reader = pypdf.PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.title or "") if reader.metadata else ""
    except pypdf.errors.PyPdfError as exc:
        raise InvalidInput(str(path), f"is not a readable PDF ({exc})") from exc
    return title, "\n\n".join(page.strip() for page in pages).strip() + "\n"
