"""`write_report(out)`: one offline HTML page and one Markdown file gathering every reproduced experiment.

Reads `out/<name>/experiment.json`, `summary.md` and the PNG figures listed there. The HTML page
embeds the images as base64 data URIs and uses no script, font or style sheet from the network; the
Markdown file links the images by relative path.

The results folder is not trusted: nothing outside it is read, and no text from it becomes markup.
- Every file read resolves (symlinks followed) inside its experiment's folder, and that folder
  inside `out`; a figure that does not, or is not a PNG file, is skipped with a warning line in
  both outputs, and so is an experiment whose folder or experiment.json does not.
- Text (names, paper, figure, size, summaries, warnings) is HTML-escaped in report.html. In
  report.md, `&`, `<`, `>` outside code are written as character references (so no raw HTML,
  autolink or entity survives), so are backticks outside code spans and the tildes of a would-be
  fence, and `](`, `][`, `]:` lose their bracket (no link or image); code spans and fenced code
  blocks of the summaries stay as they are (a renderer shows them as text), so the Markdown tables
  and code remain readable. The settings JSON has `&`, `<`, `>` as \\u escapes (the same JSON).
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from pathlib import Path
from urllib.parse import quote

from deepcollapse import results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inside(path: Path, root: Path) -> Path | None:
    """`path` resolved (symlinks followed) if that is `root` (already resolved) or below it, else None."""
    try:
        p = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return p if p.is_relative_to(root) else None


def _experiments(out: Path) -> tuple[list[tuple[Path, dict]], list[str]]:
    """(resolved folder, experiment.json) of every usable experiment under `out`, and the warnings."""
    root = out.resolve()
    found, warnings = [], []
    for meta_path in sorted(out.glob("*/experiment.json")):
        where = meta_path.relative_to(out).as_posix()
        d = _inside(meta_path.parent, root)
        if d is None or d == root:
            warnings.append(f"skipped {where}: its folder resolves outside the results folder")
            continue
        m = _inside(meta_path, d)
        if m is None:
            warnings.append(f"skipped {where}: it resolves outside its folder")
            continue
        try:
            meta = json.loads(m.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError) as e:
            warnings.append(f"skipped {where}: not readable as JSON ({type(e).__name__})")
            continue
        if not isinstance(meta, dict):
            warnings.append(f"skipped {where}: not a JSON object")
            continue
        found.append((d, meta))
    return found, warnings


def reproduced(out: str | Path) -> list[tuple[Path, dict]]:
    """(folder, experiment.json) of every reproduced experiment under `out`, sorted by name (only
    those whose folder and experiment.json resolve inside `out`)."""
    return _experiments(Path(out))[0]


def _figures(d: Path, meta: dict) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """(resolved path, bytes) of the PNG figures of experiment folder `d` (resolved), and the warnings.

    The figures named in experiment.json; if none of them is there, every *.png of the folder."""
    names = meta.get("figures", [])
    warnings = []
    if not isinstance(names, list):
        warnings.append("skipped the figure list: not a list")
        names = []
    candidates = []
    for f in names:
        if not isinstance(f, str):
            warnings.append(f"skipped figure {f!r}: not a file name")
        elif f.endswith(".png"):
            p = _inside(d / f, d)
            if p is None:
                warnings.append(f"skipped figure {f!r}: it resolves outside the experiment's folder")
            elif p.is_file():
                candidates.append((f, p))
    if not candidates:
        for g in sorted(d.glob("*.png")):
            p = _inside(g, d)
            if p is None:
                warnings.append(f"skipped figure {g.name!r}: it resolves outside the experiment's folder")
            elif p.is_file():
                candidates.append((g.name, p))
    figures = []
    for f, p in candidates:
        try:
            data = p.read_bytes()
        except OSError as e:
            warnings.append(f"skipped figure {f!r}: not readable ({type(e).__name__})")
            continue
        if not data.startswith(PNG_SIGNATURE):
            warnings.append(f"skipped figure {f!r}: not a PNG file")
            continue
        figures.append((p, data))
    return figures, warnings


def _summary(d: Path) -> tuple[str, list[str]]:
    """summary.md of experiment folder `d` (resolved), '' if absent or outside `d`, and the warnings."""
    path = d / "summary.md"
    if not (path.exists() or path.is_symlink()):
        return "", []
    p = _inside(path, d)
    if p is None or not p.is_file():
        return "", ["skipped summary.md: it resolves outside the experiment's folder or is not a file"]
    try:
        return p.read_text(encoding="utf-8", errors="replace"), []
    except OSError as e:
        return "", [f"skipped summary.md: not readable ({type(e).__name__})"]


def _field(meta: dict, key: str, default: str = "") -> str:
    """A one-line text field of experiment.json."""
    v = meta.get(key, default)
    return " ".join(str(default if v is None else v).split())


def _strip_title(md: str) -> str:
    """summary.md without its first heading line (the report writes its own)."""
    lines = md.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


# ---------------------------------------------------------------- Markdown escaping

_TICKS = re.compile(r"`+")
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})[\w+.-]*[ \t]*")  # at column 0, an info string without backticks


def _md_chars(t: str) -> str:
    """Text between code spans: no raw HTML, autolink, entity, code delimiter, link or image."""
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "&#96;")
    return re.sub(r"\](?=[(\[:])", "&#93;", t)


def md_text(s: str) -> str:
    """Plain text for Markdown: `_md_chars` and every bracket as a character reference."""
    return _md_chars(s).replace("[", "&#91;").replace("]", "&#93;")


def _md_line(line: str) -> str:
    """One line of Markdown, its code spans kept, the rest through `_md_chars`.

    A code span here: a run of backticks not preceded by a backslash, up to the next run of the same
    length on the same line, with no `|` inside (a table row splits at it first). Backticks that open
    no such span are written as character references, so the spans kept are exactly the code spans
    a Markdown renderer finds: none can open earlier, or end elsewhere, than here. Likewise the
    tildes of a line that would open a tilde fence."""
    out, pos, i = [], 0, 0
    while (m := _TICKS.search(line, i)) is not None:
        s, e = m.span()
        close = None
        if s == 0 or line[s - 1] != "\\":
            close = re.compile(rf"(?<!`)`{{{e - s}}}(?!`)").search(line, e)
        if close is None or "|" in line[e:close.start()]:
            i = e
            continue
        out.append(_md_chars(line[pos:s]))
        out.append(line[s:close.end()])
        pos = i = close.end()
    out.append(_md_chars(line[pos:]))
    # a tilde fence that md_escape did not keep (indented, unclosed, odd info string) opens none here
    return re.sub(r"^( {0,3})(~{3,})", lambda t: t[1] + "&#126;" * len(t[2]), "".join(out))


def md_escape(md: str) -> str:
    """Markdown from an untrusted source with no raw HTML left: see the module docstring.

    Fenced code blocks are kept when they open at column 0 with a plain info string and a closing
    fence follows (the first line a renderer would take as closing, since any line of up to three
    spaces, the fence character at least as many times, and blanks closes); everything else goes
    through `_md_line`."""
    lines = md.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out, i = [], 0
    while i < len(lines):
        m = _FENCE_OPEN.fullmatch(lines[i])
        if m:
            fence = m.group(1)
            closing = re.compile(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
            j = next((k for k in range(i + 1, len(lines)) if closing.fullmatch(lines[k])), None)
            if j is not None:
                out.extend(lines[i:j + 1])
                i = j + 1
                continue
        out.append(_md_line(lines[i]))
        i += 1
    return "\n".join(out)


def _md_fence(text: str, info: str = "") -> str:
    """`text` as a fenced code block whose fence no line of `text` can close."""
    longest = max((len(r) for r in _TICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


# ---------------------------------------------------------------- the report

def _h(x) -> str:
    return html.escape(str(x), quote=True)


def write_report(out: str | Path) -> tuple[Path, Path]:
    """Write out/report.html and out/report.md; return their paths (ValueError if nothing is there)."""
    out = Path(out)
    root = out.resolve()
    exps, skipped = _experiments(out)
    if not exps and not skipped:
        raise ValueError(f"out: no reproduced experiment (no */experiment.json) under {out}")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    heads = [{k: _field(m, k, d.name if k == "name" else "") for k in ("name", "paper", "figure", "size")}
             for d, m in exps]
    md = [f"# deepcollapse: reproduced figures\n\nWritten {stamp}; {len(exps)} experiment(s).\n"]
    md += [f"**warning**: {md_text(w)}\n" for w in skipped]
    body = [f"<h1>deepcollapse: reproduced figures</h1><p>Written {_h(stamp)}; {len(exps)} experiment(s).</p>"]
    body += [f'<p class="warning"><b>warning</b>: {_h(w)}</p>' for w in skipped]
    body.append("<ul>" + "".join(f'<li><a href="#{_h(h["name"])}">{_h(h["name"])}</a> '
                                 f'({_h(h["paper"])}, {_h(h["figure"])}, {_h(h["size"])})</li>'
                                 for h in heads) + "</ul>")
    for (d, meta), h in zip(exps, heads):
        summary, warnings = _summary(d)
        pngs, fig_warnings = _figures(d, meta)
        warnings += fig_warnings
        settings = json.dumps({"settings": meta.get("settings"), "configs": meta.get("configs")}, indent=1,
                              sort_keys=True, default=str)
        md_settings = settings.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")  # same JSON
        md.append(f"\n## {md_escape(h['name'])}\n\n{md_escape(h['paper'])}, {md_escape(h['figure'])}; "
                  f"size **{md_escape(h['size'])}**.\n")
        md += [f"**warning**: {md_text(w)}\n" for w in warnings]
        for p, _ in pngs:
            md.append(f"![{md_text(h['name'])}]({quote(p.relative_to(root).as_posix())})\n")
        md.append(md_escape(_strip_title(summary)))
        md.append(f"<details><summary>settings and configs</summary>\n\n{_md_fence(md_settings, 'json')}\n</details>\n")
        body.append(f'<section id="{_h(h["name"])}"><h2>{_h(h["name"])}</h2>'
                    f'<p>{_h(h["paper"])}, {_h(h["figure"])}; size <b>{_h(h["size"])}</b>.</p>')
        body += [f'<p class="warning"><b>warning</b>: {_h(w)}</p>' for w in warnings]
        for p, data in pngs:
            body.append(f'<img alt="{_h(p.name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">')
        body.append(markdown_to_html(_strip_title(summary)))
        body.append("<details><summary>settings and configs</summary>"
                    f"<pre>{_h(settings)}</pre></details></section>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>deepcollapse report</title><style>"
            "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}img{max-width:100%}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "section{border-top:1px solid #888;margin-top:2em}pre{background:#f4f4f4;overflow:auto;max-height:30em}"
            ".warning{color:#a00}</style></head><body>" + "\n".join(body) + "</body></html>\n")
    html_path, md_path = out / "report.html", out / "report.md"
    results.atomic_write_text(html_path, page)
    results.atomic_write_text(md_path, "\n".join(md))
    return html_path, md_path


def _inline(text: str) -> str:
    """Escaped text with `code` spans and **bold** as HTML (code first: no bold inside code)."""
    parts = re.split(r"`([^`]+)`", text)
    return "".join(f"<code>{_h(p)}</code>" if k % 2 else re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", _h(p))
                   for k, p in enumerate(parts))


def markdown_to_html(md: str) -> str:
    """The Markdown subset the summaries use: headings, paragraphs, '- ' lists, pipe tables, code spans.
    Every piece of text is HTML-escaped; the only tags are the ones written here."""
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
