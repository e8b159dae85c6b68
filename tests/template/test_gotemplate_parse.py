"""Lexer/parser conformance for meshctl.template.gotemplate (after Go's parse/parse_test.go)."""

from __future__ import annotations

import pytest

from meshctl.template.gotemplate import Template, TemplateError
from meshctl.template.gotemplate.lexer import lex
from meshctl.template.gotemplate.parser import ListNode, TextNode

FUNCS = {"printf": lambda *a: "", "contains": lambda a, b: a in b}


def _quoted_text(node: TextNode) -> str:
    return '"' + node.text.encode("unicode_escape").decode().replace('"', '\\"') + '"'


def _tree_string(root: ListNode, monkeypatch: pytest.MonkeyPatch) -> str:
    """Go's Tree.Root.String() with textFormat = "%q" (text nodes quoted), as parse_test.go uses."""
    monkeypatch.setattr(TextNode, "__str__", _quoted_text)
    return str(root)


# (name, input, String() of the parse tree) - Go's parseTests with noError
PARSE_CASES = [
    ("empty", "", ""),
    ("comment", "{{/*\n\n\n*/}}", ""),
    ("spaces", " \t\n", '" \\t\\n"'),
    ("text", "some text", '"some text"'),
    ("field", "{{.X}}", "{{.X}}"),
    ("simple command", "{{printf}}", "{{printf}}"),
    ("$ invocation", "{{$}}", "{{$}}"),
    ("variable invocation", "{{with $x := 3}}{{$x 23}}{{end}}", "{{with $x := 3}}{{$x 23}}{{end}}"),
    ("variable with fields", "{{$.I}}", "{{$.I}}"),
    ("multi-word command", "{{printf `%d` 23}}", "{{printf `%d` 23}}"),
    ("pipeline", "{{.X|.Y}}", "{{.X | .Y}}"),
    ("pipeline with decl", "{{$x := .X|.Y}}", "{{$x := .X | .Y}}"),
    ("nested pipeline", "{{.X (.Y .Z) (.A | .B .C) (.E)}}", "{{.X (.Y .Z) (.A | .B .C) (.E)}}"),
    ("field applied to parentheses", "{{(.Y .Z).Field}}", "{{(.Y .Z).Field}}"),
    ("simple if", "{{if .X}}hello{{end}}", '{{if .X}}"hello"{{end}}'),
    ("if with else", "{{if .X}}true{{else}}false{{end}}", '{{if .X}}"true"{{else}}"false"{{end}}'),
    ("if with else if", "{{if .X}}true{{else if .Y}}false{{end}}",
     '{{if .X}}"true"{{else}}{{if .Y}}"false"{{end}}{{end}}'),
    ("if else chain", "+{{if .X}}X{{else if .Y}}Y{{else if .Z}}Z{{end}}+",
     '"+"{{if .X}}"X"{{else}}{{if .Y}}"Y"{{else}}{{if .Z}}"Z"{{end}}{{end}}{{end}}"+"'),
    ("simple range", "{{range .X}}hello{{end}}", '{{range .X}}"hello"{{end}}'),
    ("chained field range", "{{range .X.Y.Z}}hello{{end}}", '{{range .X.Y.Z}}"hello"{{end}}'),
    ("nested range", "{{range .X}}hello{{range .Y}}goodbye{{end}}{{end}}",
     '{{range .X}}"hello"{{range .Y}}"goodbye"{{end}}{{end}}'),
    ("range with else", "{{range .X}}true{{else}}false{{end}}", '{{range .X}}"true"{{else}}"false"{{end}}'),
    ("range over pipeline", "{{range .X|.M}}true{{else}}false{{end}}",
     '{{range .X | .M}}"true"{{else}}"false"{{end}}'),
    ("range []int", "{{range .SI}}{{.}}{{end}}", "{{range .SI}}{{.}}{{end}}"),
    ("range 1 var", "{{range $x := .SI}}{{.}}{{end}}", "{{range $x := .SI}}{{.}}{{end}}"),
    ("range 2 vars", "{{range $x, $y := .SI}}{{.}}{{end}}", "{{range $x, $y := .SI}}{{.}}{{end}}"),
    ("range with break", "{{range .SI}}{{.}}{{break}}{{end}}", "{{range .SI}}{{.}}{{break}}{{end}}"),
    ("range with continue", "{{range .SI}}{{.}}{{continue}}{{end}}", "{{range .SI}}{{.}}{{continue}}{{end}}"),
    ("constants", "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
     "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}"),
    ("template", "{{template `x`}}", '{{template "x"}}'),
    ("template with arg", "{{template `x` .Y}}", '{{template "x" .Y}}'),
    ("with", "{{with .X}}hello{{end}}", '{{with .X}}"hello"{{end}}'),
    ("with with else", "{{with .X}}hello{{else}}goodbye{{end}}", '{{with .X}}"hello"{{else}}"goodbye"{{end}}'),
    ("with with else with", "{{with .X}}hello{{else with .Y}}goodbye{{end}}",
     '{{with .X}}"hello"{{else}}{{with .Y}}"goodbye"{{end}}{{end}}'),
    ("with else chain", "{{with .X}}X{{else with .Y}}Y{{else with .Z}}Z{{end}}",
     '{{with .X}}"X"{{else}}{{with .Y}}"Y"{{else}}{{with .Z}}"Z"{{end}}{{end}}{{end}}'),
    ("trim left", "x \r\n\t{{- 3}}", '"x"{{3}}'),
    ("trim right", "{{3 -}}\n\n\ty", '{{3}}"y"'),
    ("trim left and right", "x \r\n\t{{- 3 -}}\n\n\ty", '"x"{{3}}"y"'),
    ("trim with extra spaces", "x\n{{-  3   -}}\ny", '"x"{{3}}"y"'),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", '"x"'),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", '"y"'),
    ("comment trim left and right", "x \r\n\t{{- /* */ -}}\n\n\ty", '"x""y"'),
    ("block definition", '{{block "foo" .}}hello{{end}}', '{{template "foo" .}}'),
    ("newline in assignment", "{{ $x \n := \n 1 \n }}", "{{$x := 1}}"),
    ("newline in pipeline", '{{\n"x"\n|\nprintf\n}}', '{{"x" | printf}}'),
    ("newline in comment", "{{/*\nhello\n*/}}", ""),
    ("newline in trimmed comment", "{{-\n/*\nhello\n*/\n-}}", ""),
    ("spaces around continue", "{{range .SI}}{{.}}{{ continue }}{{end}}", "{{range .SI}}{{.}}{{continue}}{{end}}"),
    ("spaces around break", "{{range .SI}}{{.}}{{ break }}{{end}}", "{{range .SI}}{{.}}{{break}}{{end}}"),
    ("bug0a", "{{$x := 0}}{{$x}}", "{{$x := 0}}{{$x}}"),
    ("bug1c", "{{$x:=.}}{{$x +2}}", "{{$x := .}}{{$x +2}}"),
    ("bug2a", "{{range $x := 0}}{{$x}}{{end}}", "{{range $x := 0}}{{$x}}{{end}}"),
    ("bug2b", "{{range $x = 0}}{{$x}}{{end}}", "{{range $x = 0}}{{$x}}{{end}}"),
    ("paren nesting", "{{ ((( 1 ))) | printf }}", "{{(((1))) | printf}}"),
    ("paren nesting with other constructs", "{{ if ((( true ))) }}YES{{ end }}", '{{if (((true)))}}"YES"{{end}}'),
    ("minus number is not a trim marker", "{{-3}}", "{{-3}}"),
]


@pytest.mark.parametrize("name,text,want", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_tree_string(name: str, text: str, want: str, monkeypatch: pytest.MonkeyPatch) -> None:
    t = Template(name=name, text=text, funcs=FUNCS)
    assert _tree_string(t.parse_tree.root, monkeypatch) == want


# (name, input, exact error message) - Go's errorTests and parseTests with hasError
ERROR_CASES = [
    ("unclosed1", "line1\n{{", "template: unclosed1:2: unclosed action"),
    ("unclosed2", "line1\n{{define `x`}}line2\n{{", "template: unclosed2:3: unclosed action"),
    ("unclosed3", 'line1\n{{"x"\n"y"\n', "template: unclosed3:4: unclosed action started at unclosed3:2"),
    ("unclosed4", "{{\n\n\n\n\n", "template: unclosed4:6: unclosed action started at unclosed4:1"),
    ("var1", "line1\n{{\nx\n}}", 'template: var1:3: function "x" not defined'),
    ("function", "{{foo}}", 'template: function:1: function "foo" not defined'),
    ("comment1", "{{/*}}", "template: comment1:1: unclosed comment"),
    ("comment2", "{{/*\nhello\n}}", "template: comment2:1: unclosed comment"),
    ("comment3", "{{/* x */ y}}", "template: comment3:1: comment ends before closing delimiter"),
    ("lparen", "{{.X (1 2 3}}", "template: lparen:1: unclosed left paren"),
    ("rparen", "{{.X 1 2 3 ) }}", "template: rparen:1: unexpected right paren"),
    ("rparen2", "{{(.X 1 2 3", "template: rparen2:1: unclosed action"),
    ("space", "{{`x`3}}", 'template: space:1: unexpected "3" in operand'),
    ("idchar", "{{a#}}", "template: idchar:1: bad character U+0023 '#'"),
    ("charconst", "{{'a}}", "template: charconst:1: unterminated character constant"),
    ("stringconst", '{{"a}}', "template: stringconst:1: unterminated quoted string"),
    ("rawstringconst", "{{`a}}", "template: rawstringconst:1: unterminated raw quoted string"),
    ("unterminated raw string line", "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n",
     "template: X:3: unterminated raw quoted string"),
    ("number", "{{0xi}}", 'template: number:1: illegal number syntax: "0xi"'),
    ("bad number", "{{ 1x }}", 'template: bad number:1: bad number syntax: "1x"'),
    ("multidefine", "{{define `a`}}a{{end}}{{define `a`}}b{{end}}",
     'template: multidefine:1: template: multiple definition of template "a"'),
    ("block then define", '{{block "x" .}}default{{end}}{{define "x"}}override{{end}}',
     'template: block then define:1: template: multiple definition of template "x"'),
    ("eof", "{{range .X}}", "template: eof:1: unexpected EOF"),
    ("variable", "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}", 'template: variable:1: unexpected ":=" in operand'),
    ("multidecl", "{{$a,$b,$c := 23}}", "template: multidecl:1: too many declarations in command"),
    ("undefvar", "{{$a}}", 'template: undefvar:1: undefined variable "$a"'),
    ("wrongdot", "{{true.any}}", 'template: wrongdot:1: unexpected . after term "true"'),
    ("wrongpipeline", "{{12|false}}", "template: wrongpipeline:1: non executable command in pipeline stage 2"),
    ("emptypipeline", "{{ ( ) }}", "template: emptypipeline:1: missing value for parenthesized pipeline"),
    ("multilinerawstring", "{{ $v := `\n` }} {{", "template: multilinerawstring:2: unclosed action"),
    ("rangeundefvar", "{{range $k}}{{end}}", 'template: rangeundefvar:1: undefined variable "$k"'),
    ("rangeundefvars", "{{range $k, $v}}{{end}}", 'template: rangeundefvars:1: undefined variable "$v"'),
    ("rangemissingvalue1", "{{range $k,}}{{end}}", "template: rangemissingvalue1:1: missing value for range"),
    ("rangemissingvalue2", "{{range $k, $v := }}{{end}}", "template: rangemissingvalue2:1: missing value for range"),
    ("rangenotvariable1", "{{range $k, .}}{{end}}", "template: rangenotvariable1:1: range can only initialize variables"),
    ("rangenotvariable2", "{{range $k, 123 := .}}{{end}}",
     "template: rangenotvariable2:1: range can only initialize variables"),
    ("emptyAction", "{{}}", "template: emptyAction:1: missing value for command"),
    ("newline in empty action", "{{\n}}", "template: newline in empty action:2: missing value for command"),
    ("unmatched end", "{{end}}", "template: unmatched end:1: unexpected {{end}}"),
    ("unmatched else", "{{else}}", "template: unmatched else:1: unexpected {{else}}"),
    ("unmatched else after if", "{{if .X}}hello{{end}}{{else}}", "template: unmatched else after if:1: unexpected {{else}}"),
    ("multiple else", "{{if .X}}1{{else}}2{{else}}3{{end}}", "template: multiple else:1: expected end; found {{else}}"),
    ("missing end", "hello{{range .x}}", "template: missing end:1: unexpected EOF"),
    ("missing end after else", "hello{{range .x}}{{else}}", "template: missing end after else:1: unexpected EOF"),
    ("variable undefined after end", "{{with $x := 4}}{{end}}{{$x}}",
     'template: variable undefined after end:1: undefined variable "$x"'),
    ("variable from range body undefined after end", "{{range .}}{{$y := 1}}{{end}}{{$y}}",
     'template: variable from range body undefined after end:1: undefined variable "$y"'),
    ("variable undefined in template", "{{template $v}}", 'template: variable undefined in template:1: unexpected "$v" in template clause'),
    ("template with field ref", "{{template .X}}", 'template: template with field ref:1: unexpected ".X" in template clause'),
    ("template no name", "{{template}}", 'template: template no name:1: unexpected "}}" in template clause'),
    ("invalid punctuation", "{{printf 3, 4}}", 'template: invalid punctuation:1: unexpected "," in operand'),
    ("multidecl outside range", "{{with $v, $u := 3}}{{end}}", "template: multidecl outside range:1: too many declarations in with"),
    ("too many decls in range", "{{range $u, $v, $w := 3}}{{end}}",
     "template: too many decls in range:1: too many declarations in range"),
    ("dot applied to parentheses", "{{printf (printf .).}}", "template: dot applied to parentheses:1: unexpected <.> in operand"),
    ("adjacent args", "{{printf 3`x`}}", 'template: adjacent args:1: unexpected "`x`" in operand'),
    ("adjacent args with .", "{{printf `x`.}}", "template: adjacent args with .:1: unexpected <.> in operand"),
    ("extra end after if", "{{if .X}}a{{else if .Y}}b{{end}}{{end}}", "template: extra end after if:1: unexpected {{end}}"),
    ("break outside range", "{{range .}}{{end}} {{break}}", "template: break outside range:1: {{break}} outside {{range}}"),
    ("continue outside range", "{{range .}}{{end}} {{continue}}",
     "template: continue outside range:1: {{continue}} outside {{range}}"),
    ("break in range else", "{{range .}}{{else}}{{break}}{{end}}", "template: break in range else:1: {{break}} outside {{range}}"),
    ("break with argument", "{{range .}}{{break 1}}{{end}}", 'template: break with argument:1: unexpected "1" in {{break}}'),
    ("bug0b", "{{$x += 1}}{{$x}}", 'template: bug0b:1: undefined variable "$x"'),
    ("bug0e", "{{range $x := $y := 3}}{{end}}", 'template: bug0e:1: undefined variable "$y"'),
    ("bug1a", "{{$x:=.}}{{$x!2}}", "template: bug1a:1: bad character U+0021 '!'"),
    ("bug1b", "{{$x:=.}}{{$x+2}}", "template: bug1b:1: bad character U+002B '+'"),
    ("trim marker needs a space", "{{.X-}}", "template: trim marker needs a space:1: bad character U+002D '-'"),
    ("expected :=", "{{$x := 1}}{{$x : 1}}", "template: expected :=:1: expected :="),
    ("dot after integer", "{{1.E}}", 'template: dot after integer:1: illegal number syntax: "1.E"'),
    ("dot after float", "{{0.1.E}}", 'template: dot after float:1: unexpected . after term "0.1"'),
    ("dot after boolean", "{{true.E}}", 'template: dot after boolean:1: unexpected . after term "true"'),
    ("dot after char", "{{'a'.any}}", "template: dot after char:1: unexpected . after term \"'a'\""),
    ("dot after string", '{{"hello".guys}}', 'template: dot after string:1: unexpected . after term "\\"hello\\""'),
    ("dot after dot", "{{..E}}", 'template: dot after dot:1: unexpected . after term "."'),
    ("dot after nil", "{{nil.E}}", 'template: dot after nil:1: unexpected . after term "nil"'),
    ("wrong pipeline dot", "{{12|.}}", "template: wrong pipeline dot:1: non executable command in pipeline stage 2"),
    ("wrong pipeline number", "{{.|12|printf}}", "template: wrong pipeline number:1: non executable command in pipeline stage 2"),
    ("wrong pipeline string", '{{.|printf|"error"}}',
     "template: wrong pipeline string:1: non executable command in pipeline stage 3"),
    ("wrong pipeline char", "{{12|printf|'e'}}", "template: wrong pipeline char:1: non executable command in pipeline stage 3"),
    ("wrong pipeline boolean", "{{.|true}}", "template: wrong pipeline boolean:1: non executable command in pipeline stage 2"),
    ("wrong pipeline nil", "{{'c'|nil}}", "template: wrong pipeline nil:1: non executable command in pipeline stage 2"),
    ("empty pipeline", '{{printf "%d" ( ) }}', "template: empty pipeline:1: missing value for parenthesized pipeline"),
    ("block without pipeline", '{{block "foo"}}hello{{end}}', "template: block without pipeline:1: missing value for block clause"),
    ("define inside if", '{{if .}}{{define "x"}}{{end}}{{end}}', "template: define inside if:1: unexpected <define> in command"),
    ("end with argument", "{{if .}}{{end .}}", "template: end with argument:1: unexpected <.> in end"),
    ("bad string escape", '{{"\\q"}}', "template: bad string escape:1: invalid syntax"),
    ("integer overflow", "{{99999999999999999999}}", "template: integer overflow:1: integer overflow: 99999999999999999999"),
    ("space before comment (consul-template-examples test.ctmpl)", "# hi\n{{ /* comment */ -}}\nx",
     'template: space before comment (consul-template-examples test.ctmpl):2: unexpected "/" in command'),
    ("error on a later line", "a\nb\n{{if .}}\n{{else}}\n{{else}}\n{{end}}",
     "template: error on a later line:5: expected end; found {{else}}"),
]


@pytest.mark.parametrize("name,text,want", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_parse_errors(name: str, text: str, want: str) -> None:
    tname = "X" if name == "unterminated raw string line" else name
    with pytest.raises(TemplateError) as ei:
        Template(name=tname, text=text, funcs=FUNCS)
    assert str(ei.value) == want


def test_unknown_function_is_a_parse_error_naming_the_line() -> None:
    with pytest.raises(TemplateError) as ei:
        Template(name="nginx.ctmpl", text="a\nb\n{{ keyy \"x\" }}", funcs={"key": lambda k: k})
    assert str(ei.value) == 'template: nginx.ctmpl:3: function "keyy" not defined'


def test_break_keyword_becomes_identifier_when_a_func_is_named_break() -> None:
    Template(name="t", text="{{range .X}}{{break 20}}{{end}}", funcs={"break": lambda x: x})
    with pytest.raises(TemplateError):
        Template(name="t", text="{{range .X}}{{break 20}}{{end}}")


def test_defines_are_collected() -> None:
    t = Template(name="root", text='{{define "a"}}A{{end}}{{define `b`}}B{{end}}{{block "c" .}}C{{end}}')
    assert t.defined_templates() == ["a", "b", "c", "root"]
    assert t.lookup("a") is not None and t.lookup("zz") is None


def test_redefining_an_empty_template_is_allowed() -> None:
    t = Template(name="t", text='{{define "a"}}  {{end}}{{define "a"}}full{{end}}{{template "a"}}')
    assert t.execute(None) == "full"


def test_lexer_items() -> None:
    items = lex('{{.X | printf "%d" 1 -}} text')
    kinds = [(it.val) for it in items]
    assert kinds == ["{{", ".X", " ", "|", " ", "printf", " ", '"%d"', " ", "1", "}}", "text", ""]


def test_lexer_custom_delimiters_and_trim() -> None:
    items = lex("a  <<- .X ->>  b", "<<", ">>")
    assert [it.val for it in items] == ["a", "<<", ".X", ">>", "b", ""]


def test_lexer_line_numbers() -> None:
    items = lex("a\nb{{\n.X\n}}c")
    by_val = {it.val: it.line for it in items}
    assert by_val["a\nb"] == 1 and by_val[".X"] == 3 and by_val["c"] == 4


def test_action_and_pipe_lines() -> None:
    t = Template(name="bench", text="{{printf 1234}}\n" * 3, funcs=FUNCS)
    actions = [n for n in t.parse_tree.root.nodes if not isinstance(n, TextNode)]
    assert [a.line for a in actions] == [1, 2, 3]
    assert [a.pipe.line for a in actions] == [1, 2, 3]


def test_deeply_nested_template_is_an_error_not_a_crash() -> None:
    with pytest.raises(TemplateError):
        Template(name="deep", text="{{" + "(" * 5000 + "1" + ")" * 5000 + "}}")


MORE_ERRORS = [
    ("long token is truncated", '{{with 1}}{{end "a very long string"}}',
     'template: long token is truncated:1: unexpected "\\"a very lo"... in end'),
    ("continue with argument", "{{range .}}{{continue 1}}{{end}}",
     'template: continue with argument:1: unexpected "1" in {{continue}}'),
    ("else in block", '{{block "x" .}}a{{else}}b{{end}}', "template: else in block:1: unexpected {{else}} in block clause"),
    ("else in define", '{{define "x"}}a{{else}}b{{end}}', "template: else in define:1: unexpected {{else}} in define clause"),
    ("define without name", "{{define 1}}{{end}}", 'template: define without name:1: unexpected "1" in define clause'),
    ("define with bad name", '{{define "\\q"}}{{end}}', "template: define with bad name:1: invalid syntax"),
    ("malformed char", "{{'ab'}}", "template: malformed char:1: malformed character constant: 'ab'"),
    ("unrecognized character", "{{\x01}}", "template: unrecognized character:1: unrecognized character in action: U+0001"),
    ("bad complex", "{{1+2}}", 'template: bad complex:1: bad number syntax: "1+2"'),
]


@pytest.mark.parametrize("name,text,want", MORE_ERRORS, ids=[c[0] for c in MORE_ERRORS])
def test_more_parse_errors(name: str, text: str, want: str) -> None:
    with pytest.raises(TemplateError) as ei:
        Template(name=name, text=text)
    assert str(ei.value) == want


def test_string_escapes_build_utf8_bytes() -> None:
    t = Template(name="t", text='{{"\\xe2\\x82\\xac"}} {{"\\342\\202\\254"}} {{\'\\xFF\'}} {{"\\U0001F600"}}')
    assert t.execute(None) == "€ € 255 \U0001F600"


def test_uint64_constant_overflows_int_at_execution() -> None:
    t = Template(name="t", text="{{18446744073709551615}}")
    with pytest.raises(TemplateError) as ei:
        t.execute(None)
    assert str(ei.value) == (
        'template: t:1:2: executing "t" at <18446744073709551615>: 18446744073709551615 overflows int'
    )


def test_spaces_before_trim_marker() -> None:
    t = Template(name="t", text="{{ 1   -}}   x {{- 2 }}")
    assert t.execute(None) == "1x2"
