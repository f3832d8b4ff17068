"""Colours of the interactive shell: the lexer's token styles plus the pane and toolbar."""

from __future__ import annotations

from prompt_toolkit.styles import BaseStyle, Style, merge_styles

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


def lexer_style() -> dict[str, str]:
    """The token colours of the input line, owned by the lexer."""
    from qmpsh.lexer import DEFAULT_STYLE

    return dict(DEFAULT_STYLE)


def make_style() -> BaseStyle:
    return merge_styles([Style.from_dict(lexer_style()), Style.from_dict(UI_STYLE)])
