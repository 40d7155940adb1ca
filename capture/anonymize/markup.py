"""XML and HTML bodies through real parsers: element text and attribute values anonymized.

XML is parsed by defusedxml (no entity expansion, no external DTDs: a hostile body fails
to parse and is not stored); HTML by the standard library's html.parser, which never fails,
so every text node and attribute value passes through the value rules. Comments go.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError, tostring

if TYPE_CHECKING:
    from .values import ValueAnonymizer

_URL_ATTRIBUTES = frozenset(("href", "src", "action", "formaction", "cite", "poster", "data"))
_RAW_TEXT = frozenset(("script", "style"))


def anonymize_xml(values: ValueAnonymizer, text: str) -> str | None:
    """The XML document with every text and attribute value anonymized, or None when it does
    not parse (or tries entity tricks)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    _element(values, root)
    return str(tostring(root, encoding="unicode"))


def _local(tag: object) -> str:
    name = str(tag)
    return name.rsplit("}", 1)[-1] if "}" in name else name


def _element(values: ValueAnonymizer, element: Element) -> None:
    field = _local(element.tag)
    for name, value in list(element.attrib.items()):
        element.set(name, _attribute(values, _local(name), value))
    if element.text and element.text.strip():
        element.text = values.string(element.text, field)
    for child in element:
        _element(values, child)
        if child.tail and child.tail.strip():
            child.tail = values.string(child.tail)


def _attribute(values: ValueAnonymizer, name: str, value: str) -> str:
    if name.lower() in _URL_ATTRIBUTES:
        return values.url(value)
    return values.string(value, name)


class _Rewriter(HTMLParser):
    """Re-emits an HTML document with its text and attribute values anonymized."""

    def __init__(self, values: ValueAnonymizer) -> None:
        super().__init__(convert_charrefs=True)
        self.values = values
        self.out: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self._tag(tag, attrs, ">"))
        self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self._tag(tag, attrs, "/>"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open and self._open.pop() != tag:
                pass
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not data.strip():
            self.out.append(data)
            return
        field = self._open[-1] if self._open else None
        made = self.values.string(data, None if field in _RAW_TEXT else field)
        in_raw_text = bool(self._open) and self._open[-1] in _RAW_TEXT
        self.out.append(made if in_raw_text else html.escape(made, quote=False))

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>" if decl.lower().startswith("doctype") else "")

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], end: str) -> str:
        parts = [tag]
        for name, value in attrs:
            if value is None:
                parts.append(name)
            else:
                made = _attribute(self.values, name, value)
                parts.append(f'{name}="{html.escape(made, quote=True)}"')
        return "<" + " ".join(parts) + end


def anonymize_html(values: ValueAnonymizer, text: str) -> str:
    """The HTML document with every text node and attribute value anonymized."""
    rewriter = _Rewriter(values)
    rewriter.feed(text)
    rewriter.close()
    return "".join(rewriter.out)
