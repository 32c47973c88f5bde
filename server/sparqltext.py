"""Just enough SPARQL lexing to police and parametrise query text.

pyoxigraph gives no access to the parsed algebra, so safety checks (SERVICE, LOAD)
and the injection of parameter bindings work on a *masked* copy of the text in
which comments, string literals and IRIs are blanked out (same length, so offsets
still match the original).
"""

from __future__ import annotations

import re

import pyoxigraph as ox

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple

# SPARQL allows \uXXXX / \UXXXXXXXX escapes anywhere in the query text; undo them
# before looking for keywords so that `\u0053ERVICE` cannot slip through.
_CODEPOINT = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def unescape_codepoints(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        try:
            return chr(int(m.group(1) or m.group(2), 16))
        except ValueError:  # out of range: leave it for the parser to reject
            return m.group(0)

    return _CODEPOINT.sub(sub, text)


# One pass over the text: long strings first, then short strings, IRIs and comments.
_MASKED = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*(?:"""|$)'
    r"|'''(?:[^'\\]|\\.|'(?!''))*(?:'''|$)"
    r'|"(?:[^"\\\n]|\\.)*"?'
    r"|'(?:[^'\\\n]|\\.)*'?"
    r'|<[^<>"{}|^`\\\x00-\x20]*>'
    r"|#[^\n]*",
    re.S,
)


def _blank(m: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def mask(text: str) -> str:
    """Blank out comments, string literals and IRIs, keeping offsets."""
    return _MASKED.sub(_blank, text)


def _keyword(masked: str, word: str) -> re.Match[str] | None:
    # A keyword, not part of a variable (?service), prefixed name (ex:service,
    # service:x) or longer name (my-service).
    pattern = rf"(?<![\w?$:\-]){word}(?![\w:\-])"
    return re.search(pattern, masked, re.IGNORECASE)


def forbidden_keyword(text: str, words: tuple[str, ...] = ("SERVICE",)) -> str | None:
    """Return the first of ``words`` used as a keyword in the query, else None."""
    masked = mask(unescape_codepoints(text))
    for w in words:
        if _keyword(masked, w):
            return w
    return None


def inject_values(query: str, bindings: dict[str, Term], patterns: list[str] | None = None) -> str:
    """Insert a ``VALUES`` block at the start of the top-level WHERE group.

    Terms are written with pyoxigraph's own N-Triples serialisation, so values are
    never spliced as raw text.  Placing the block first in the group (rather than
    as a trailing VALUES clause, which SPARQL joins only after FILTERs ran) lets
    FILTERs such as ``!BOUND(?_x) || ?y = ?_x`` see the bound value.  ``patterns``
    (the query author's, from its header) follow the block.
    """
    if not bindings:
        return query
    masked = mask(query)
    where = _keyword(masked, "WHERE")
    start = where.end() if where else 0
    brace = masked.find("{", start)
    if brace < 0:
        raise ValueError("query has no WHERE group to bind parameters into")
    names = list(bindings)
    values = " ".join(str(bindings[n]) for n in names)
    block = f" VALUES ({' '.join('?' + n for n in names)}) {{ ({values}) }} "
    block += "".join(f"{p} " for p in patterns or [])
    return query[: brace + 1] + block + query[brace + 1 :]


MAX_NESTING = 128  # brackets of all kinds; real queries stay well under 20
_BRACKET = re.compile(r"[{}()\[\]]")


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{ ( [`` outside comments, strings and IRIs."""
    depth = deepest = 0
    for m in _BRACKET.finditer(mask(text)):
        if m.group(0) in "{([":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


_FORM = re.compile(r"(?<![\w?$:\-])(SELECT|CONSTRUCT|DESCRIBE|ASK)(?![\w:\-])", re.IGNORECASE)


def query_form(text: str) -> str | None:
    """SELECT, CONSTRUCT, DESCRIBE or ASK (first keyword outside comments/strings)."""
    m = _FORM.search(mask(text))
    return m.group(1).upper() if m else None


def mentions_keyword(text: str, word: str) -> bool:
    """True when ``word`` (e.g. FROM) is used as a keyword outside comments, strings, IRIs."""
    return _keyword(mask(unescape_codepoints(text)), word) is not None
