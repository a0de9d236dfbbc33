"""`write_report(out)`: one offline HTML page and one Markdown file gathering every reproduced experiment.

Reads `out/<name>/experiment.json`, `summary.md` and the PNG figures listed there. The HTML page
embeds the images as base64 data URIs and uses no script, font or style sheet from the network; the
Markdown file links the images by relative path.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from pathlib import Path

from deepcollapse import results


def reproduced(out: str | Path) -> list[tuple[Path, dict]]:
    """(folder, experiment.json) of every reproduced experiment under `out`, sorted by name."""
    out = Path(out)
    found = []
    for meta in sorted(out.glob("*/experiment.json")):
        found.append((meta.parent, json.loads(meta.read_text())))
    return found


def _pngs(d: Path, meta: dict) -> list[Path]:
    named = [d / f for f in meta.get("figures", []) if f.endswith(".png")]
    return [p for p in named if p.exists()] or sorted(d.glob("*.png"))


def _strip_title(md: str) -> str:
    """summary.md without its first heading line (the report writes its own)."""
    lines = md.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def write_report(out: str | Path) -> tuple[Path, Path]:
    """Write out/report.html and out/report.md; return their paths (ValueError if nothing is there)."""
    out = Path(out)
    exps = reproduced(out)
    if not exps:
        raise ValueError(f"out: no reproduced experiment (no */experiment.json) under {out}")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    md = [f"# deepcollapse: reproduced figures\n\nWritten {stamp}; {len(exps)} experiment(s).\n"]
    body = [f"<h1>deepcollapse: reproduced figures</h1><p>Written {html.escape(stamp)}; {len(exps)} experiment(s).</p>",
            "<ul>" + "".join(f'<li><a href="#{html.escape(m["name"])}">{html.escape(m["name"])}</a> '
                             f'({html.escape(m["paper"])}, {html.escape(m["figure"])}, {html.escape(m["size"])})</li>'
                             for _, m in exps) + "</ul>"]
    for d, meta in exps:
        summary = (d / "summary.md").read_text() if (d / "summary.md").exists() else ""
        pngs = _pngs(d, meta)
        settings = json.dumps({"settings": meta.get("settings"), "configs": meta.get("configs")}, indent=1,
                              sort_keys=True, default=str)
        md.append(f"\n## {meta['name']}\n\n{meta['paper']}, {meta['figure']}; size **{meta['size']}**.\n")
        for p in pngs:
            md.append(f"![{meta['name']}]({p.relative_to(out).as_posix()})\n")
        md.append(_strip_title(summary))
        md.append(f"<details><summary>settings and configs</summary>\n\n```json\n{settings}\n```\n</details>\n")
        body.append(f'<section id="{html.escape(meta["name"])}"><h2>{html.escape(meta["name"])}</h2>'
                    f'<p>{html.escape(meta["paper"])}, {html.escape(meta["figure"])}; '
                    f'size <b>{html.escape(meta["size"])}</b>.</p>')
        for p in pngs:
            b64 = base64.b64encode(p.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(p.name)}" src="data:image/png;base64,{b64}">')
        body.append(markdown_to_html(_strip_title(summary)))
        body.append("<details><summary>settings and configs</summary>"
                    f"<pre>{html.escape(settings)}</pre></details></section>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>deepcollapse report</title><style>"
            "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}img{max-width:100%}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "section{border-top:1px solid #888;margin-top:2em}pre{background:#f4f4f4;overflow:auto;max-height:30em}"
            "</style></head><body>" + "\n".join(body) + "</body></html>\n")
    html_path, md_path = out / "report.html", out / "report.md"
    results.atomic_write_text(html_path, page)
    results.atomic_write_text(md_path, "\n".join(md))
    return html_path, md_path


def _inline(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    return t


def markdown_to_html(md: str) -> str:
    """The Markdown subset the summaries use: headings, paragraphs, '- ' lists, pipe tables, code spans."""
    out, para, lines = [], [], md.splitlines()
    i = 0

    def flush():
        if para:
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush()
        elif line.startswith("#"):
            flush()
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            if rows:
                head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
                rest = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
                out.append(f"<table><tr>{head}</tr>{rest}</table>")
            continue
        elif line.lstrip().startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        else:
            para.append(line)
        i += 1
    flush()
    return "\n".join(out)
