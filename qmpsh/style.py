"""Colours of the interactive shell: the lexer's token styles plus the pane and toolbar."""

from __future__ import annotations

from prompt_toolkit.styles import BaseStyle, Style, merge_styles

# The input line's token classes (see lexer.py, which assigns them) and their colours.
HIGHLIGHT_STYLE: dict[str, str] = {
    "command": "bold ansigreen",
    "command.unknown": "bold ansired",
    "command.shell": "bold ansicyan",
    "command.hmp": "bold ansiyellow",
    "key": "ansiblue",
    "key.unknown": "ansired underline",
    "equals": "ansibrightblack",
    "value": "",
    "value.string": "ansiyellow",
    "value.number": "ansimagenta",
    "value.keyword": "ansicyan",
    "value.json": "ansiyellow",
    "value.unknown": "ansired",
    "punct": "bold",
    "comment": "italic ansibrightblack",
    "error": "bg:ansired ansiwhite",
}

UI_STYLE = {
    "prompt": "bold ansigreen",
    "prompt.continuation": "ansibrightblack",
    "busy": "ansiyellow",
    "event-pane": "",
    "event-pane.border": "ansibrightblack",
    "event-pane.title": "bold",
    "event.error": "bold ansired",
    "event.warning": "ansiyellow",
    "event.notice": "ansicyan",
    "event.info": "",
    "bottom-toolbar": "noreverse bg:ansibrightblack fg:ansiwhite",
    "toolbar.signature": "bold",
    "toolbar.state": "",
    "toolbar.disconnected": "bold ansired",
    "toolbar.running": "ansigreen",
    "toolbar.stopped": "bold ansiyellow",
    "toolbar.unseen": "bold ansiyellow",
    "confirm": "bold reverse ansired",
    "confirm.answer": "bold",
}


def make_style() -> BaseStyle:
    """Here, not beside the lexer: the first draw needs the colours, not the lexer (whose
    schema modules load when the line first holds text)."""
    return merge_styles([Style.from_dict(HIGHLIGHT_STYLE), Style.from_dict(UI_STYLE)])
