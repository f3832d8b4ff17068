"""Token styles of the input line, against a schema captured from a real QEMU."""

from __future__ import annotations

import pytest
from prompt_toolkit.document import Document

from qmpsh.lexer import Highlighter, QmpLexer, split_lines
from qmpsh.schema import Schema, SchemaIndex
from qmpsh.style import HIGHLIGHT_STYLE
from qmpsh.syntax import Syntax

SHELL = frozenset({"help", "exit", "format"})


@pytest.fixture(scope="module")
def highlighter(schema: Schema) -> Highlighter:
    return Highlighter(SchemaIndex.build(schema), Syntax(shell_words=SHELL))


def styles(h: Highlighter, text: str) -> dict[str, str]:
    """Style of each non-blank fragment, keyed by its text."""
    frags = h.fragments(text)
    assert "".join(t for _, t, *_ in frags) == text
    return {t: s for s, t, *_ in frags if t.strip()}


@pytest.mark.parametrize(
    ("text", "word", "style"),
    [
        ("query-status", "query-status", "class:command"),
        ("query-statux ", "query-statux", "class:command.unknown"),
        ("query-sta", "query-sta", "class:command"),  # still being typed
        ("help eject", "help", "class:command.shell"),
        ("eject force=true", "force", "class:key"),
        ("eject forse=true", "forse", "class:key.unknown"),
        ("eject fo", "fo", "class:key"),  # a prefix of force, still being typed
        ("eject id=x", "x", "class:value"),
        ("eject force=true", "true", "class:value.keyword"),
        ("eject force=true", "=", "class:equals"),
        ("block-set-write-threshold node-name=a write-threshold=42", "42", "class:value.number"),
        ("eject id='a b'", "'a b'", "class:value.string"),
        ("set_password protocol=vnc password=x", "vnc", "class:value"),
        ("set_password protocol=vmc password=x", "vmc", "class:value.unknown"),
        ("blockdev-add driver=qcow2 backing=null", "backing", "class:key"),
        ("blockdev-add driver=raw backing=null", "backing", "class:key.unknown"),
        (
            "blockdev-add driver=qcow2 file.driver=file file.filename=x",
            "file.filename",
            "class:key",
        ),
        ("device_add driver=e1000 mac=52:54:00:12:34:56", "mac", "class:key"),
        ("transaction( abort )", "abort", "class:command"),
        ("transaction( eject )", "eject", "class:command.unknown"),
        ("transaction( abort )", "transaction(", "class:punct"),
        ("eject id={", "{", "class:value.json"),
        ("# a comment", "# a comment", "class:comment"),
    ],
)
def test_token_style(highlighter: Highlighter, text: str, word: str, style: str) -> None:
    assert styles(highlighter, text)[word] == style


def test_hmp_mode_styles_the_first_word_as_hmp(schema: Schema) -> None:
    h = Highlighter(SchemaIndex.build(schema), Syntax(hmp_mode=True, shell_words=SHELL))
    assert styles(h, "info status")["info"] == "class:command.hmp"
    assert styles(h, "help")["help"] == "class:command.shell"


def test_without_a_schema_nothing_is_unknown() -> None:
    h = Highlighter(None)
    found = styles(h, "no-such x=1")
    assert found["no-such"] == "class:command"
    assert found["x"] == "class:key"


def test_every_style_class_has_a_default_colour(highlighter: Highlighter) -> None:
    text = "transaction( abort, blockdev-snapshot-sync bad=1 device='x' ) # end"
    for style, _, *_ in highlighter.fragments(text):
        if style:
            assert style.removeprefix("class:") in HIGHLIGHT_STYLE


def test_lexer_splits_a_multi_line_transaction(schema: Schema) -> None:
    lexer = QmpLexer(lambda: schema)
    get_line = lexer.lex_document(Document("transaction(\n  abort\n)"))
    assert get_line(0) == [("class:punct", "transaction(")]
    assert ("class:command", "abort") in get_line(1)
    assert get_line(2) == [("class:punct", ")")]
    assert get_line(9) == []


def test_split_lines_keeps_empty_lines() -> None:
    assert split_lines([("a", "x\n\ny")]) == [[("a", "x")], [], [("a", "y")]]


@pytest.mark.parametrize(
    ("text", "word", "style"),
    [
        ("device_del id=123", "123", "class:value"),  # sent as the string "123"
        ("eject force=on", "on", "class:value.keyword"),  # sent as true
        ("eject force=maybe", "maybe", "class:value.unknown"),
        ("eject force=o", "o", "class:value"),  # still being typed: on, off
        ("block-set-write-threshold write-threshold=abc node-name=1", "abc", "class:value.unknown"),
        (
            "block-set-write-threshold node-name=1 write-threshold=0x10",
            "0x10",
            "class:value.number",
        ),
        ("block-set-write-threshold node-name=1 write-threshold=2", "1", "class:value"),
        ("eject force='true'", "'true'", "class:value.unknown"),  # quoted: a string, not a bool
        ("device_add driver=e1000 extra=12", "12", "class:value.number"),  # open: sent as guessed
    ],
)
def test_values_are_coloured_as_the_schema_types_them(
    highlighter: Highlighter, text: str, word: str, style: str
) -> None:
    assert styles(highlighter, text)[word] == style


def test_highlighting_a_line_reads_it_once(
    highlighter: Highlighter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Styling is linear: the scanner sees each lexeme once, however many arguments follow.

    (The highlighter used to re-analyse the text before every token: quadratic.)
    """
    from qmpsh import syntax

    counts = {"lexemes": 0, "analyze": 0}
    real_lex_one, real_analyze = syntax._lex_one, syntax.Syntax.analyze

    def counting_lex_one(*args: object) -> object:
        counts["lexemes"] += 1
        return real_lex_one(*args)  # type: ignore[arg-type]

    def counting_analyze(self: syntax.Syntax, text: str) -> syntax.Context:
        counts["analyze"] += 1
        return real_analyze(self, text)

    monkeypatch.setattr(syntax, "_lex_one", counting_lex_one)
    monkeypatch.setattr(syntax.Syntax, "analyze", counting_analyze)
    for n in (10, 1000):
        counts.update(lexemes=0, analyze=0)
        text = "blockdev-add driver=qcow2 " + " ".join(f"k{i}.x={i}" for i in range(n))
        highlighter.fragments(text)
        assert counts["analyze"] == 0
        assert counts["lexemes"] == 2 * n + 3  # command, driver=, n arguments, the spaces
