"""Files read into documents: titles, visible HTML text, PDF text (pypdf), content hashes, and
one clear error for what cannot be read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hive.errors import InvalidInput
from hive.runtime.rag.documents import collect_files, read_document


def minimal_pdf(text: str, title: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, with an Info dictionary naming `title`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_markdown_keeps_its_text_and_takes_its_first_heading_as_title(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("Intro line.\n\n## Bees in Winter ##\n\nThey cluster.\n", encoding="utf-8")
    document = read_document(path)
    assert document.title == "Bees in Winter"
    assert document.text == path.read_text(encoding="utf-8")
    assert document.source == str(path.resolve())
    assert document.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_text_files_are_titled_by_their_name(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("Just text.", encoding="utf-8")
    assert read_document(path).title == "plain.txt"


def test_html_is_reduced_to_its_visible_text(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Ferry &amp; Rules</title><style>p{}</style>"
        "<script>var hidden = 1;</script></head><body><h1>Ferry</h1>"
        "<p>Fares   are <em>low</em>.</p><ul><li>Bikes: 1.50</li></ul></body></html>",
        encoding="utf-8",
    )
    document = read_document(path)
    assert document.title == "Ferry & Rules"
    assert document.text == "Ferry\n\nFares are low.\n\nBikes: 1.50\n"


def test_pdf_text_and_title_come_from_pypdf(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(minimal_pdf("The ferry stops above 2.8 metres.", "Ferry Manual"))
    document = read_document(path)
    assert document.title == "Ferry Manual"
    assert "The ferry stops above 2.8 metres." in document.text


def test_unreadable_inputs_are_named(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK")
    with pytest.raises(InvalidInput, match=r"unsupported file type \.docx"):
        read_document(tmp_path / "x.docx")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        read_document(tmp_path / "bad.txt")
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(InvalidInput, match="is not a readable PDF"):
        read_document(tmp_path / "broken.pdf")
    with pytest.raises(InvalidInput, match="no such file or folder"):
        collect_files([tmp_path / "missing"])


def test_folders_give_their_supported_files_in_order(tmp_path: Path) -> None:
    for name in ("b.md", "a.txt", "skip.docx", "sub/c.html"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    names = [p.relative_to(tmp_path).as_posix() for p in collect_files([tmp_path])]
    assert names == ["a.txt", "b.md", "sub/c.html"]
