"""`write_report` on a results folder it must not trust: nothing read from outside it, no markup from its text."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from deepcollapse.experiments.report import (
    PNG_SIGNATURE,
    markdown_to_html,
    md_escape,
    write_report,
)

XSS = "<script>alert(1)</script>"


def png(tag: str) -> bytes:
    """A valid 1x1 PNG whose bytes differ by `tag` (a text chunk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00" + tag.encode()) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
            + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render_md(text: str) -> str:
    """report.md as a CommonMark renderer that passes raw HTML and every link through shows it."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: True
    return md.render(text)


def experiment(out, folder, meta, summary=None, files=None):
    d = out / folder
    d.mkdir(parents=True)
    (d / "experiment.json").write_text(json.dumps(meta))
    if summary is not None:
        (d / "summary.md").write_text(summary)
    for name, data in (files or {}).items():
        (d / name).write_bytes(data)
    return d


SUMMARY = (f"# title line\n\nIntro {XSS} and a < b & c > d, `code <kept>` here.\n\n"
           "| run | `<x>` | ratio < 1 |\n| --- | --- | --- |\n| a | 1 | <img src=x onerror=alert(2)> |\n\n"
           "- item **bold** [link](javascript:alert(3))\n\n```python\nif a < b:\n    print('<b>')\n```\n")


@pytest.fixture
def tree(tmp_path):
    """out/ with one honest-looking experiment whose files try to reach outside/, and outside/ itself."""
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    secret = png("secret")
    (outside / "secret.png").write_bytes(secret)
    (outside / "secret.md").write_text("SECRET-SUMMARY-TEXT\n")
    good = png("good")
    d = experiment(out, "exp-a", {
        "name": f"exp-a{XSS}", "paper": f"Paper {XSS}", "figure": "Fig. <b>1</b>", "size": "quick",
        "figures": ["exp-a.png", "../../outside/secret.png", "link.png", str(outside / "secret.png"),
                    "fake.png", 7, "exp-a.pdf"],
        "settings": {"note": f"```\n{XSS}\n```"}, "configs": [{"lr": 0.1}],
    }, summary=SUMMARY, files={"exp-a.png": good, "fake.png": f"<html>{XSS}</html>".encode()})
    os.symlink(outside / "secret.png", d / "link.png")
    # an experiment whose summary.md is a symlink to a file outside
    e = experiment(out, "exp-b", {"name": "exp-b", "paper": "P", "figure": "F", "size": "full", "figures": []})
    os.symlink(outside / "secret.md", e / "summary.md")
    # an experiment folder that is a symlink to a folder outside
    experiment(tmp_path, "outside-exp", {"name": "OUTSIDE-EXPERIMENT", "paper": "P", "figure": "F", "size": "s",
                                         "figures": ["o.png"]}, summary="SECRET-SUMMARY-TEXT\n",
               files={"o.png": secret})
    os.symlink(tmp_path / "outside-exp", out / "exp-c")
    html_path, md_path = write_report(out)
    return {"html": html_path.read_text(), "md": md_path.read_text(), "secret": secret, "good": good}


def test_figures_outside_the_folder_are_not_embedded(tree):
    page, md = tree["html"], tree["md"]
    assert b64(tree["secret"]) not in page
    images = [line for line in md.splitlines() if line.startswith("![")]
    assert images and not any("secret" in line or "outside" in line for line in images)
    for text in (page, md):
        assert "skipped figure &#x27;../../outside/secret.png&#x27;" in text or \
            "skipped figure '../../outside/secret.png'" in text
        assert text.count("resolves outside the experiment") >= 3  # ../.., the symlink, the absolute path


def test_symlinks_out_of_the_folder_are_not_followed(tree):
    page, md = tree["html"], tree["md"]
    for text in (page, md):
        assert "link.png" in text and "SECRET-SUMMARY-TEXT" not in text and "OUTSIDE-EXPERIMENT" not in text
        assert "skipped exp-c/experiment.json: its folder resolves outside the results folder" in text
        assert "skipped summary.md" in text
    assert "![" not in "".join(line for line in md.splitlines() if "link.png" in line)


def test_a_png_name_on_other_content_is_not_embedded(tree):
    for text in (tree["html"], tree["md"]):
        assert "skipped figure" in text and "fake.png" in text and "not a PNG file" in text
    assert "fake.png)" not in tree["md"]


def test_normal_figures_are_still_embedded(tree):
    assert f"data:image/png;base64,{b64(tree['good'])}" in tree["html"]
    assert "](exp-a/exp-a.png)" in tree["md"]
    assert tree["html"].count("data:image/png;base64,") == 1


def test_html_in_names_and_summaries_is_escaped(tree):
    page, md = tree["html"], tree["md"]
    for text in (page, md, render_md(md)):
        low = text.lower()
        assert "<script" not in low and "<img src=x" not in low and "<b>1</b>" not in low
        assert 'href="javascript' not in low
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="exp-a&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    rendered = render_md(md)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # shown as text, not dropped
    assert "a &lt; b &amp; c &gt; d" in rendered


def test_markdown_tables_and_code_stay_readable(tree):
    md = tree["md"]
    assert "`code <kept>`" in md and "| run | `<x>` | ratio &lt; 1 |" in md
    assert "```python\nif a < b:\n    print('<b>')\n```" in md
    rendered = render_md(md)
    assert "<code>code &lt;kept&gt;</code>" in rendered and "<th><code>&lt;x&gt;</code></th>" in rendered
    assert "<table>" in rendered and "<pre><code class=\"language-python\">if a &lt; b:" in rendered
    assert "<strong>bold</strong>" in rendered


TOKENS = ["`", "``", "```", "~~~", "    ", " ", "\n", "\n\n", "\r", "\t", "\\", "|", "[", "]", "(", ")", ":",
          "!", "*", "- ", "> ", "# ", "---", "&", "&lt;", "x", "py", XSS, "<img src=x onerror=alert(2)>",
          "<http://example.com>", "javascript:alert(3)", "</details>"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_no_markup_survives_the_markdown_escape(text):
    rendered = render_md(md_escape(text)).lower()
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert "</details>" not in rendered
    assert "<script" not in markdown_to_html(text).lower()


def test_markdown_to_html_escapes_and_keeps_code_apart():
    h = markdown_to_html(f"# {XSS}\n\n`a ** b` **c** {XSS}\n\n| `<t>` | x |\n|---|---|\n| {XSS} | y |\n")
    assert "<script" not in h and "<code>a ** b</code>" in h and "<b>c</b>" in h and "<code>&lt;t&gt;</code>" in h


def test_settings_block_is_the_same_json(tree):
    md = tree["md"]
    start = md.index("````json\n") + len("````json\n")
    block = json.loads(md[start:md.index("\n````", start)])
    assert block == {"settings": {"note": f"```\n{XSS}\n```"}, "configs": [{"lr": 0.1}]}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in tree["html"].split("<pre>")[1]
