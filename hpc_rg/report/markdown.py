"""Markdown for the reports, and its HTML page: markdown-it-py (CommonMark + tables) into a jinja2 template.

Text read from files (job names, job text, model names, attributes) goes through `inline()` or `code()`
before it enters the markdown, and markdown-it runs with html=False: whatever a file holds comes out as
text, never as markup (a `<script>` in a job name is shown, not run). Links to `*.md` files of the run
folder (the sweep report's per-point reports) point at their `.html` twins in the page.
"""
from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["printable", "inline", "code", "fence", "table", "render_html"]

# what can start markup inside a line (emphasis, code, links, images, autolinks, raw HTML, entities,
# tables, strikethrough, escapes, and `#`, which also closes a heading: "### x #" is the heading "x");
# a few more only at the start of a line (headings, lists, quotes)
_INLINE = re.compile(r"([\\`*_\[\]<>|!~&#])")
_LINE_START = re.compile(r"^([#=+\-]|\d+[.)])")


def printable(text) -> str:
    """str(text) that can be written as UTF-8: a lone surrogate (h5py gives one for each byte of an
    attribute that is not UTF-8) becomes U+FFFD instead of failing the whole report at write time."""
    text = str(text)
    try:                                  # h5py's escaped bytes back to bytes: one U+FFFD per bad byte
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:            # other lone surrogates
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def inline(text) -> str:
    """Untrusted text as literal inline markdown: one line, every character that could start markup
    backslash-escaped (CommonMark lets any ASCII punctuation be escaped; the rest is left readable)."""
    text = _INLINE.sub(r"\\\1", " ".join(printable(text).split()))
    return _LINE_START.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], text)


def code(text) -> str:
    """Untrusted text as an inline code span that no backtick inside can close early."""
    text = " ".join(printable(text).split())
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fence(text: str, info: str = "") -> list[str]:
    """A fenced code block longer than any backtick run in `text` (so the text cannot end it)."""
    text = printable(text)
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return [ticks + info, text, ticks]


def table(header: list[str], rows: list[list]) -> list[str]:
    """A pipe table; cells are markdown already (escape untrusted parts with inline()); a `|` or a line
    break inside a cell is neutralised so that it cannot split the row. Every `|` gets a backslash, also
    one escaped already: the table takes `\\|` back to `|` before the cell is parsed, so inline()'s `\\|`
    and a code span's `\\|` (a backslash and a pipe in a name) both come out as they went in."""
    def cell(c) -> str:
        return " ".join(str(c).split()).replace("|", "\\|")
    out = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table").enable("strikethrough")

    def md_links_to_html(state):
        for tok in state.tokens:
            for child in tok.children or ():
                if child.type == "link_open":
                    href = child.attrGet("href") or ""
                    if href.endswith(".md") and "://" not in href and not href.startswith("/"):
                        child.attrSet("href", href[:-3] + ".html")
    md.core.ruler.push("md_links_to_html", md_links_to_html)
    return md


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, PackageLoader, select_autoescape
    env = Environment(loader=PackageLoader("hpc_rg.report", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True))
    return env.get_template("report.html.j2")


def render_html(markdown: str, title: str) -> str:
    """The page of a report: the markdown rendered, in the template (embedded CSS, escaped title)."""
    from markupsafe import Markup

    from hpc_rg import __version__
    body = Markup(_parser().render(markdown))      # markdown-it escaped every text node (html=False)
    return _template().render(title=" ".join(printable(title).split()), body=body, version=__version__)
