"""Execution conformance for meshctl.template.gotemplate.

Expected outputs are what Go's text/template produces (most cases mirror Go's own
src/text/template/exec_test.go, adapted to Python data).
"""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.template.gotemplate import NO_VALUE, Template, TemplateError, execute_template_func, format_value


class U:
    def __init__(self) -> None:
        self.V = "v"

    def TrueFalse(self, b: bool) -> str:
        return "true" if b else ""


class T:
    """A stand-in for exec_test.go's tVal: attributes are fields, methods are methods."""

    def __init__(self) -> None:
        setattr(self, "True", True)
        self.I = 17
        self.U16 = 16
        self.X = "x"
        self.S = "xyz"
        self.U = U()
        self.SI = [3, 4, 5]
        self.SIEmpty: list[int] = []
        self.SB = [True, False]
        self.MSI = {"one": 1, "two": 2, "three": 3}
        self.MSIone = {"one": 1}
        self.MSIEmpty: dict[str, int] = {}
        self.MXI: dict[str, Any] = {}
        self.SMSI = [{"one": 1, "two": 2}, {"eleven": 11, "twelve": 12}]
        self.Empty0 = None
        self.Empty3 = [7, 8]
        self.Empty4 = {"V": "UinEmpty"}
        self.FloatZero = 0.0
        self.ComplexZero = 0j
        self.PSI = [21, 22, 23]
        self.BinaryFunc = lambda a, b: f"[{a}={b}]"
        self.VariadicFunc = lambda *s: "<" + "+".join(s) + ">"
        self.NilOKFunc = lambda p: p is None

    def Method0(self) -> str:
        return "M0"

    def Method1(self, a: Any) -> Any:
        return a

    def Method2(self, a: Any, b: Any) -> str:
        return f"Method2: {format_value(a)} {format_value(b)}"

    def Method3(self, v: Any) -> str:
        return "Method3: " + format_value(v)

    def MAdd(self, a: int, lst: list[int]) -> list[int]:
        return [a + x for x in lst]

    def MyError(self, error: bool) -> bool:
        if error:
            raise ValueError("my error")
        return False

    def GetU(self) -> U:
        return self.U

    def Copy(self) -> T:
        return self


def _count(n: int):
    """Like exec_test.go's count: a channel (here a generator) of n letters."""
    for i in range(n):
        yield "abcdefghijklmnop"[i]


FUNCS = {
    "add": lambda *a: sum(a),
    "count": _count,
    "echo": lambda x: x,
    "makemap": lambda *a: dict(zip(a[::2], a[1::2], strict=True)),
    "mapOfThree": lambda: {"three": 3},
    "oneArg": lambda a: "oneArg=" + a,
    "twoArgs": lambda a, b: "twoArgs=" + a + b,
    "zeroArgs": lambda: "zeroArgs",
}

tVal = T()

# (name, input, expected output, data)
OK_CASES: list[tuple[str, str, str, Any]] = [
    # Trivial cases.
    ("empty", "", "", None),
    ("text", "some text", "some text", None),
    ("nil action", "{{nil}}{{.}}", None, None),  # replaced below: nil is not a command
    # Fields of structs / objects.
    (".X", "-{{.X}}-", "-x-", tVal),
    (".U.V", "-{{.U.V}}-", "-v-", tVal),
    # Fields on maps.
    ("map .one", "{{.MSI.one}}", "1", tVal),
    ("map .two", "{{.MSI.two}}", "2", tVal),
    ("map .NO", "{{.MSI.NO}}", "<no value>", tVal),
    ("map .one interface", "{{.MXI.one}}", "<no value>", tVal),
    ("map lower-case key", "{{.cause}}", "neglect", {"cause": "neglect"}),
    # Dots of all kinds.
    ("dot int", "<{{.}}>", "<13>", 13),
    ("dot float", "<{{.}}>", "<15.1>", 15.1),
    ("dot bool", "<{{.}}>", "<true>", True),
    ("dot string", "<{{.}}>", "<hello>", "hello"),
    ("dot slice", "<{{.}}>", "<[-1 -2 -3]>", [-1, -2, -3]),
    ("dot map", "<{{.}}>", "<map[two:22]>", {"two": 22}),
    ("dot nil", "<{{.}}>", "<<no value>>", None),
    # $ is the root dot.
    ("$ int", "{{$}}", "123", 123),
    ("$.I", "{{$.I}}", "17", tVal),
    ("$.U.V", "{{$.U.V}}", "v", tVal),
    ("declare in action", "{{$x := $.U.V}}{{$x}}", "v", tVal),
    ("simple assignment", "{{$x := 2}}{{$x = 3}}{{$x}}", "3", tVal),
    ("nested assignment", "{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}", "3", tVal),
    ("nested assignment changes the last declaration",
     "{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}", "1", tVal),
    # Type with String method: a Python object with __str__.
    ("V{6666}.String()", "-{{.V}}-", "-<6666>-", {"V": type("V", (), {"__str__": lambda s: "<6666>"})()}),
    # Variables.
    ("$ int var", "{{$}}", "123", 123),
    ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", "17", tVal),
    ("with $x struct.U.V", "{{with $x := $}}{{$x.U.V}}{{end}}", "v", tVal),
    ("with variable and action", "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", "v", tVal),
    ("if $x with $y int", "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}", "true,17", tVal),
    ("if $x with $x int", "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}", "17,true", tVal),
    ("range $ inside", "{{range .SI}}{{$.I}}{{end}}", "171717", tVal),
    # Methods.
    (".Method0", "-{{.Method0}}-", "-M0-", tVal),
    (".Method1(1234)", "-{{.Method1 1234}}-", "-1234-", tVal),
    (".Method1(.I)", "-{{.Method1 $.I}}-", "-17-", tVal),
    (".Method2(3, .X)", "-{{.Method2 3 .X}}-", "-Method2: 3 x-", tVal),
    (".Method2(.U16, `str`)", "-{{.Method2 .U16 `str`}}-", "-Method2: 16 str-", tVal),
    (".Method2(.U16, $x)", "{{if $x := .X}}-{{.Method2 .U16 $x}}{{end}}-", "-Method2: 16 x-", tVal),
    (".Method3(nil constant)", "-{{.Method3 nil}}-", "-Method3: <nil>-", tVal),
    (".Method3(nil value)", "-{{.Method3 .MXI.unset}}-", "-Method3: <nil>-", tVal),
    ("method on var", "{{if $x := .}}-{{$x.Method2 .U16 $x.X}}{{end}}-", "-Method2: 16 x-", tVal),
    ("method on chained var",
     "{{range .MSIone}}{{if $.U.TrueFalse $.True}}{{$.U.TrueFalse $.True}}{{else}}WRONG{{end}}{{end}}",
     "true", tVal),
    ("chained method",
     "{{range .MSIone}}{{if $.GetU.TrueFalse $.True}}{{$.U.TrueFalse $.True}}{{else}}WRONG{{end}}{{end}}",
     "true", tVal),
    ("chained method on variable", "{{with $x := .}}{{with .SI}}{{$.GetU.TrueFalse $.True}}{{end}}{{end}}",
     "true", tVal),
    (".NilOKFunc not nil", "{{call .NilOKFunc .PSI}}", "false", tVal),
    ("method on nil value from slice", "-{{range .}}{{.Method1 1234}}{{end}}-", "-1234-", [T()]),
    # Function call builtin.
    (".BinaryFunc", "{{call .BinaryFunc `1` `2`}}", "[1=2]", tVal),
    (".VariadicFunc0", "{{call .VariadicFunc}}", "<>", tVal),
    (".VariadicFunc2", "{{call .VariadicFunc `he` `llo`}}", "<he+llo>", tVal),
    ("if .BinaryFunc call", "{{ if .BinaryFunc}}{{call .BinaryFunc `1` `2`}}{{end}}", "[1=2]", tVal),
    ("if not .BinaryFunc call", "{{ if not .BinaryFunc}}{{call .BinaryFunc `1` `2`}}{{else}}No{{end}}", "No", tVal),
    # Pipelines.
    ("pipeline", "-{{.Method0 | .Method2 .U16}}-", "-Method2: 16 M0-", tVal),
    ("pipeline func", "-{{call .VariadicFunc `llo` | call .VariadicFunc `he` }}-", "-<he+<llo>>-", tVal),
    ("piped value is the last argument", '{{"aaa" | twoArgs "bbb"}}', "twoArgs=bbbaaa", tVal),
    ("pipe into printf", '{{"aaa"|printf }}', "aaa", tVal),
    ("pipe complex", '{{1+2i|printf "%v"}}', "(1+2i)", tVal),
    # Parenthesized expressions.
    ("parens in pipeline", "{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}", "1 5 15", tVal),
    ("parens: $ in paren", "{{($).X}}", "x", tVal),
    ("parens: $.GetU in paren", "{{($.GetU).V}}", "v", tVal),
    ("parens: $ in paren in pipe", "{{($ | echo).X}}", "x", tVal),
    ("parens: spaces and args", '{{(makemap "up" "down" "left" "right").left}}', "right", tVal),
    ("field chain starting with function", "{{mapOfThree.three}}-{{(mapOfThree).three}}", "3-3", 0),
    ("chained nodes as arguments", "{{print (.Copy).I}}", "17", tVal),
    # If.
    ("if true", "{{if true}}TRUE{{end}}", "TRUE", tVal),
    ("if false", "{{if false}}TRUE{{else}}FALSE{{end}}", "FALSE", tVal),
    ("if 1", "{{if 1}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", tVal),
    ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", tVal),
    ("if 1.5", "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", tVal),
    ("if 0.0", "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", tVal),
    ("if 1.5i", "{{if 1.5i}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", tVal),
    ("if 0.0i", "{{if .ComplexZero}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", tVal),
    ("if emptystring", "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("if string", "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", tVal),
    ("if emptyslice", "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("if slice", "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", tVal),
    ("if emptymap", "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("if map", "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", tVal),
    ("if map unset", "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", tVal),
    ("if map not unset", "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}", "ZERO", tVal),
    ("if nil field", "{{if .Empty0}}non-nil{{else}}nil{{end}}", "nil", tVal),
    ("if object is true", "{{if .U}}struct{{end}}", "struct", tVal),
    ("if else if", "{{if false}}FALSE{{else if true}}TRUE{{end}}", "TRUE", tVal),
    ("if else chain", "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", "3", tVal),
    ("if else chain to else", "{{if eq 1 3}}1{{else if eq 2 3}}2{{else}}none{{end}}", "none", tVal),
    # Print etc.
    ("print", '{{print "hello, print"}}', "hello, print", tVal),
    ("print 123", "{{print 1 2 3}}", "1 2 3", tVal),
    ("print nil", "{{print nil}}", "<nil>", tVal),
    ("print strings and numbers", '{{print "a" 1 2 "b" 3}}', "a1 2b3", tVal),
    ("println", "{{println 1 2 3}}", "1 2 3\n", tVal),
    ("println strings", '{{println "a" "b"}}', "a b\n", tVal),
    ("printf int", '{{printf "%04x" 127}}', "007f", tVal),
    ("printf float", '{{printf "%g" 3.5}}', "3.5", tVal),
    ("printf complex", '{{printf "%g" 1+7i}}', "(1+7i)", tVal),
    ("printf string", '{{printf "%s" "hello"}}', "hello", tVal),
    ("printf function", '{{printf "%#q" zeroArgs}}', "`zeroArgs`", tVal),
    ("printf field", '{{printf "%s" .U.V}}', "v", tVal),
    ("printf method", '{{printf "%s" .Method0}}', "M0", tVal),
    ("printf dot", '{{with .I}}{{printf "%d" .}}{{end}}', "17", tVal),
    ("printf var", '{{with $x := .I}}{{printf "%d" $x}}{{end}}', "17", tVal),
    ("printf lots", '{{printf "%d %s %g %s" 127 "hello" 7-3i .Method0}}', "127 hello (7-3i) M0", tVal),
    ("printf %T hex constant", "{{printf `%T` 0xef}}", "int", tVal),
    ("printf %T float constant", "{{printf `%T` 1e3}}", "float64", tVal),
    ("printf %T char constant", "{{printf `%T` 'x'}}", "int", tVal),
    # HTML, JS, URL query.
    ("html", '{{html "<script>alert(\\"XSS\\");</script>"}}', "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
     None),
    ("html pipeline", '{{printf "<script>alert(\\"XSS\\");</script>" | html}}',
     "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;", None),
    ("html nil", "{{html .Missing}}", "&lt;no value&gt;", {}),
    ("js", "{{js .}}", "It\\'d be nice.", "It'd be nice."),
    ("js escapes", "{{js .}}", 'a\\u003Cb\\u003E \\"q\\" \\u0026 \\u003D \\\\', 'a<b> "q" & = \\'),
    ("urlquery", '{{"http://www.example.org/"|urlquery}}', "http%3A%2F%2Fwww.example.org%2F", None),
    ("urlquery space", '{{urlquery "a b&c"}}', "a+b%26c", None),
    # Booleans.
    ("not", "{{not true}} {{not false}}", "false true", None),
    ("and", "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", "false 0 0 1", None),
    ("or", "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", "0 1 true 1", None),
    ("or short-circuits", "{{or 1 (index .SI 99)}}", "1", tVal),
    ("and short-circuits", "{{and 0 (index .SI 99)}}", "0", tVal),
    ("or returns piped value", "{{0 | or false}}", "0", None),
    ("boolean if", "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}", "TRUE", tVal),
    ("boolean if not", "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", "FALSE", None),
    ("or as if true", '{{or .SI "slice is empty"}}', "[3 4 5]", tVal),
    ("or as if false", '{{or .SIEmpty "slice is empty"}}', "slice is empty", tVal),
    ("or with default", '{{or .Missing "default"}}', "default", {}),
    # Indexing.
    ("slice[0]", "{{index .SI 0}}", "3", tVal),
    ("slice[1]", "{{index .SI 1}}", "4", tVal),
    ("map[one]", "{{index .MSI `one`}}", "1", tVal),
    ("map[two]", "{{index .MSI `two`}}", "2", tVal),
    ("map[NO] (map[string]int)", "{{index .MSI `XXX`}}", "0", tVal),
    ("map[``]", "{{index .MSI ``}}", "0", tVal),
    ("map[NO] of strings", "{{index .M `XXX`}}", "", {"M": {"a": "b"}}),
    ("map[NO] of interfaces", "{{index .M `XXX`}}", "<no value>", {"M": {"a": 1, "b": "c"}}),
    ("double index", "{{index .SMSI 1 `eleven`}}", "11", tVal),
    ("map int key", "{{index .M 2}}", "two", {"M": {1: "one", 2: "two"}}),
    ("index string gives a byte", "{{index `hello` 1}}", "101", None),
    ("index nested dicts", '{{index . "a" "b" 0}}', "x", {"a": {"b": ["x"]}}),
    # Slicing.
    ("slice[:]", "{{slice .SI}}", "[3 4 5]", tVal),
    ("slice[1:]", "{{slice .SI 1}}", "[4 5]", tVal),
    ("slice[1:2]", "{{slice .SI 1 2}}", "[4]", tVal),
    ("slice[1:2:3]", "{{slice .SI 1 2 3}}", "[4]", tVal),
    ("string[1:3]", "{{slice .S 1 3}}", "yz", tVal),
    ("string[:]", "{{slice .S}}", "xyz", tVal),
    # Len.
    ("len slice", "{{len .SI}}", "3", tVal),
    ("len map", "{{len .MSI }}", "3", tVal),
    ("len string counts bytes", "{{len .}}", "6", "héllo"),
    # With.
    ("with true", "{{with true}}{{.}}{{end}}", "true", tVal),
    ("with false", "{{with false}}{{.}}{{else}}FALSE{{end}}", "FALSE", tVal),
    ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", "1", tVal),
    ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO", tVal),
    ("with 1.5", "{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5", tVal),
    ("with 0.0", "{{with .FloatZero}}{{.}}{{else}}ZERO{{end}}", "ZERO", tVal),
    ("with 1.5i", "{{with 1.5i}}{{.}}{{else}}ZERO{{end}}", "(0+1.5i)", tVal),
    ("with 0.0i", "{{with .ComplexZero}}{{.}}{{else}}ZERO{{end}}", "ZERO", tVal),
    ("with emptystring", "{{with ``}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("with string", "{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}", "notempty", tVal),
    ("with emptyslice", "{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("with slice", "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]", tVal),
    ("with emptymap", "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("with map", "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", "map[one:1]", tVal),
    ("with empty interface, struct field", "{{with .Empty4}}{{.V}}{{end}}", "UinEmpty", tVal),
    ("else with", "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}", "true", tVal),
    ("else with chain", "{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}",
     "notempty", tVal),
    ("else with chain to else", "{{with 0}}a{{else with false}}b{{else}}c{{end}}", "c", tVal),
    # Range.
    ("range []int", "{{range .SI}}-{{.}}-{{end}}", "-3--4--5-", tVal),
    ("range empty no else", "{{range .SIEmpty}}-{{.}}-{{end}}", "", tVal),
    ("range []int else", "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", "-3--4--5-", tVal),
    ("range empty else", "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("range []bool", "{{range .SB}}-{{.}}-{{end}}", "-true--false-", tVal),
    ("range []int method", "{{range .SI | .MAdd .I}}-{{.}}-{{end}}", "-20--21--22-", tVal),
    ("range map (sorted keys)", "{{range .MSI}}-{{.}}-{{end}}", "-1--3--2-", tVal),
    ("range empty map no else", "{{range .MSIEmpty}}-{{.}}-{{end}}", "", tVal),
    ("range map else", "{{range .MSI}}-{{.}}-{{else}}EMPTY{{end}}", "-1--3--2-", tVal),
    ("range empty map else", "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY", tVal),
    ("range empty interface", "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}", "-7--8-", tVal),
    ("range empty nil", "{{range .Empty0}}-{{.}}-{{end}}", "", tVal),
    ("range nil else", "{{range .Empty0}}-{{.}}-{{else}}NIL{{end}}", "NIL", tVal),
    ("range missing key else", "{{range .Nope}}x{{else}}none{{end}}", "none", {}),
    ("range $x SI", "{{range $x := .SI}}<{{$x}}>{{end}}", "<3><4><5>", tVal),
    ("range $x $y SI", "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>", tVal),
    ("range $x MSIone", "{{range $x := .MSIone}}<{{$x}}>{{end}}", "<1>", tVal),
    ("range $x $y MSIone", "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", "<one=1>", tVal),
    ("range map keys sorted", "{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", "a=1;b=2;c=3;", {"c": 3, "a": 1, "b": 2}),
    ("range map int keys sorted numerically", "{{range $k, $v := .}}{{$k}}{{$v}} {{end}}", "2b 10a ",
     {10: "a", 2: "b"}),
    ("range $x PSI", "{{range $x := .PSI}}<{{$x}}>{{end}}", "<21><22><23>", tVal),
    ("declare in range", "{{range $x := .PSI}}<{{$foo:=$x}}{{$x}}>{{end}}", "<21><22><23>", tVal),
    ("range count", "{{range $i, $x := count 5}}[{{$i}}]{{$x}}{{end}}", "[0]a[1]b[2]c[3]d[4]e", tVal),
    ("range count one var", "{{range $x := count 3}}{{$x}}{{end}}", "abc", tVal),
    ("range nil count", "{{range $i, $x := count 0}}{{else}}empty{{end}}", "empty", tVal),
    ("range int", "{{range 5}}{{.}}{{end}}", "01234", None),
    ("range int var", "{{range $v := 3}}{{$v}}{{end}}", "012", None),
    ("range int zero else", "{{range 0}}x{{else}}none{{end}}", "none", None),
    ("range iterator", "{{range .}}{{.}}{{end}}", "xyz", iter("xyz")),
    ("range tuple", "{{range .}}{{.}}{{end}}", "12", (1, 2)),
    ("range set is sorted", "{{range .}}{{.}}{{end}}", "123", {3, 1, 2}),
    ("range assign vars", "{{$i := 0}}{{$e := 0}}{{range $i, $e = .SI}}{{end}}{{$i}} {{$e}}", "2 5", tVal),
    ("nested range", "{{range $a := .}}{{range $b := .}}{{$a}}{{$b}} {{end}}{{end}}", "[1]1 [2]2 ", [[1], [2]]),
    # break and continue.
    ("range break", "{{range .SI}}{{if eq . 4}}{{break}}{{end}}-{{.}}-{{end}}", "-3-", tVal),
    ("range continue", "{{range .SI}}{{if eq . 4}}{{continue}}{{end}}-{{.}}-{{end}}", "-3--5-", tVal),
    ("range break in with", "{{range .SI}}{{with eq . 4}}{{break}}{{end}}-{{.}}-{{end}}", "-3-", tVal),
    ("range break only inner", "{{range .}}{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}};{{end}}", "1;;3;",
     [[1, 2, 9], [2, 9], [3]]),
    ("range continue only inner",
     "{{range .}}{{range .}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}};{{end}}", "19;9;3;", [[1, 2, 9], [2, 9], [3]]),
    ("range break map", "{{range $k, $v := .}}{{if eq $k `b`}}{{break}}{{end}}{{$k}}{{end}}", "a",
     {"a": 1, "b": 2, "c": 3}),
    ("range break iterator", "{{range count 9}}{{if eq . `c`}}{{break}}{{end}}{{.}}{{end}}", "ab", tVal),
    ("range break int", "{{range 9}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", "012", None),
    # Variable scope.
    ("variable in range body ends with iteration", "{{range .SI}}{{$y := .}}{{end}}{{$x := 1}}{{$x}}", "1", tVal),
    ("variable shadowing in with", "{{$x := 1}}{{with $x := 2}}{{$x}}{{end}}{{$x}}", "21", None),
    ("variable assigned in range visible after", "{{$last := 0}}{{range .SI}}{{$last = .}}{{end}}{{$last}}",
     "5", tVal),
    ("if pipeline variable", "{{if $v := .I}}{{$v}}{{end}}", "17", tVal),
    # Templates.
    ("define and template", '{{define "a"}}[{{.}}]{{end}}{{template "a" .I}}', "[17]", tVal),
    ("template without pipeline has no dot", '{{define "a"}}{{.}}{{end}}{{template "a"}}', "<no value>", tVal),
    ("template dot is $", '{{define "a"}}{{$}}{{end}}{{template "a" 5}}', "5", tVal),
    ("nested templates", '{{define "a"}}a{{template "b" .}}{{end}}{{define "b"}}b{{.}}{{end}}{{template "a" 1}}',
     "ab1", None),
    ("template after use", '{{template "x" .}}{{define "x"}}X{{.}}{{end}}', "X1", 1),
    ("recursive template",
     '{{define "c"}}{{if .}}{{index . 0}}{{template "c" (slice . 1)}}{{end}}{{end}}{{template "c" .}}',
     "123", [1, 2, 3]),
    ("template does not inherit variables", '{{define "a"}}{{$}}{{end}}{{$x := 7}}{{template "a" "ok"}}', "ok",
     None),
    ("block", 'a({{block "inner" .}}bar({{.}})baz{{end}})b', "a(bar(hello)baz)b", "hello"),
    # Literals.
    ("ints", "{{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}} {{-3}} {{+3}} {{0X1f}}", "31 15 15 5 1000 -3 3 31", None),
    ("floats", "{{1.5}} {{1e3}} {{.5}} {{1e6}} {{1.5e-7}} {{100000.0}} {{3.0}} {{0x_1p4}} {{1e21}}",
     "1.5 1000 0.5 1e+06 1.5e-07 100000 3 16 1e+21", None),
    ("char constants", "{{'a'}} {{'\\n'}} {{'\\''}} {{'パ'}} {{'\\u30d1'}}", "97 10 39 12497 12497", None),
    ("strings", '{{"a\\tb"}}|{{"\\u00e9\\x41\\101"}}|{{`raw\\n`}}', "a\tb|éAA|raw\\n", None),
    ("raw string multi-line", "{{`a\nb`}}", "a\nb", None),
    ("bools", "{{true}} {{false}}", "true false", None),
    ("complex", "{{1+2i}}", "(1+2i)", None),
    # Printing values the way fmt's %v does.
    ("print nested list", "{{.}}", "[[1 2] [a b] map[k:v] <nil>]", [[1, 2], ["a", "b"], {"k": "v"}, None]),
    ("print dict of lists", "{{.}}", "map[a:[1 2] b:map[c:true]]", {"b": {"c": True}, "a": [1, 2]}),
    ("print float values", "{{.}}", "[0.1 1e+20 1.23456789e+08 -0 3]", [0.1, 1e20, 123456789.0, -0.0, 3.0]),
    ("print nil in dict is no value", "{{.a}}", "<no value>", {"a": None}),
    # Comparison.
    ("eq multi", "{{eq 3 4 5 6 3}} {{eq 3 4 5 6 7}}", "true false", None),
    ("eq strings", "{{eq .X `x`}} {{ne .X `x`}}", "true false", tVal),
    ("eq missing key is false", "{{eq .Missing `x`}}", "false", {}),
    ("eq nil values", "{{eq .A .B}}", "true", {"A": None, "B": None}),
    ("lt strings", "{{lt `a` `b`}} {{lt `b` `a`}}", "true false", None),
    ("le/ge/gt", "{{le 1 1}} {{ge 2 1}} {{gt 1 2}} {{gt 2.5 1.5}}", "true true false true", None),
    ("eq index byte and char", "{{eq (index `x` 0) 'x'}} {{eq (index `x` 0) 'y'}}", "true false", None),
    # Missing keys, default option.
    ("missing key default", "{{.x}} {{.y}}", "99 <no value>", {"x": 99}),
    ("missing key chained", "{{.a.b.c}}", "<no value>", {"a": {}}),
    # Trim markers.
    ("trim left", "x \r\n\t{{- 3}}", "x3", None),
    ("trim right", "{{3 -}}\n\n\ty", "3y", None),
    ("trim both", "x \r\n\t{{- 3 -}}\n\n\ty", "x3y", None),
    ("trim with extra spaces", "x\n{{-  3   -}}\ny", "x3y", None),
    ("trim doc example", "{{23 -}} < {{- 45}}", "23<45", None),
    ("minus number is not trim", "{{-3}}", "-3", None),
    ("comment", "a{{/* a comment */}}b", "ab", None),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", "x", None),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", "y", None),
    ("comment trim both", "x \r\n\t{{- /* */ -}}\n\n\ty", "xy", None),
    ("multi-line comment", "a{{/*\n\n\n*/}}b", "ab", None),
    ("newline in action", "{{ $x \n := \n 1 \n }}{{\n$x\n}}", "1", None),
    ("newline in pipeline", '{{\n"x"\n|\nprintf\n}}', "x", None),
    ("line per item with trim",
     "{{range .}}\n  {{- .}}\n{{end}}", "1\n2\n", [1, 2]),
    # Method and function values.
    ("function field not called", "{{if .BinaryFunc}}yes{{end}}", "yes", tVal),
]

OK_CASES = [c for c in OK_CASES if c[2] is not None]


@pytest.mark.parametrize("name,text,want,data", OK_CASES, ids=[c[0] for c in OK_CASES])
def test_exec(name: str, text: str, want: str, data: Any) -> None:
    assert Template(name="t", text=text, funcs=FUNCS).execute(data) == want


# (name, input, data, exact error message)
ERR_CASES: list[tuple[str, str, Any, str]] = [
    ("nil is not a command", "{{nil}}", None, 'template: t:1:2: executing "t" at <nil>: nil is not a command'),
    ("if nil", "{{if nil}}TRUE{{end}}", tVal, 'template: t:1:5: executing "t" at <nil>: nil is not a command'),
    ("call nil", "{{call nil}}", tVal,
     'template: t:1:7: executing "t" at <nil>: cannot assign nil to reflect.Value'),
    ("non-function with args", "{{3 2}}", tVal,
     'template: t:1:2: executing "t" at <3>: can\'t give argument to non-function 3'),
    ("variable with args", "{{$x := 1}}{{$x 2}}", tVal,
     'template: t:1:13: executing "t" at <$x>: can\'t give argument to non-function $x'),
    ("pipe into variable", "{{$x := 1}}{{3 | $x}}", tVal,
     'template: t:1:17: executing "t" at <$x>: can\'t give argument to non-function $x'),
    ("field of int", "{{.X.Y}}", 0, 'template: t:1:4: executing "t" at <.X.Y>: can\'t evaluate field X in type int'),
    ("nil pointer", "hello, {{.X.Y}}", {"X": None},
     'template: t:1:11: executing "t" at <.X.Y>: nil pointer evaluating interface {}.Y'),
    ("nil in parenthesized chain", "{{(nil).True}}", tVal,
     'template: t:1:3: executing "t" at <nil>: nil is not a command'),
    ("field of string", '{{$y := ("hello")}}{{$y.true}}', tVal,
     'template: t:1:23: executing "t" at <$y.true>: can\'t evaluate field true in type string'),
    ("method error", "{{.MyError true}}", tVal,
     'template: t:1:2: executing "t" at <.MyError>: error calling MyError: my error'),
    ("field with args", "{{.X 1}}", tVal,
     'template: t:1:2: executing "t" at <.X>: X has arguments but cannot be invoked as function'),
    ("map key with args", "{{.one 1}}", {"one": 1},
     'template: t:1:2: executing "t" at <.one>: one is not a method but has arguments'),
    ("index out of range", "{{index .SI 10}}", tVal,
     'template: t:1:2: executing "t" at <index .SI 10>: error calling index: index out of range: 10'),
    ("index at len", "{{index .SI 3}}", tVal,
     'template: t:1:2: executing "t" at <index .SI 3>: error calling index: reflect: slice index out of range'),
    ("index with string", "{{index .SI `hello`}}", tVal,
     'template: t:1:2: executing "t" at <index .SI `hello`>: error calling index: '
     "cannot index slice/array with type string"),
    ("index with nil", "{{index .SI nil}}", tVal,
     'template: t:1:12: executing "t" at <nil>: cannot assign nil to reflect.Value'),
    ("index of nil", "{{index nil 1}}", tVal,
     'template: t:1:8: executing "t" at <nil>: cannot assign nil to reflect.Value'),
    ("index of untyped nil", "{{index .Empty0 1}}", tVal,
     'template: t:1:2: executing "t" at <index .Empty0 1>: error calling index: index of untyped nil'),
    ("index of int", "{{index 3 1}}", tVal,
     'template: t:1:2: executing "t" at <index 3 1>: error calling index: can\'t index item of type int'),
    ("slice out of order", "{{slice .SI 2 1}}", tVal,
     'template: t:1:2: executing "t" at <slice .SI 2 1>: error calling slice: invalid slice index: 2 > 1'),
    ("slice 3-index string", "{{slice .S 1 2 3}}", tVal,
     'template: t:1:2: executing "t" at <slice .S 1 2 3>: error calling slice: cannot 3-index slice a string'),
    ("len of int", "{{len 3}}", tVal, 'template: t:1:2: executing "t" at <len 3>: error calling len: len of type int'),
    ("len of nil", "{{len .Empty0}}", tVal,
     'template: t:1:2: executing "t" at <len .Empty0>: error calling len: len of nil pointer'),
    ("eq different types", "{{eq `xy` 1}}", None,
     'template: t:1:2: executing "t" at <eq `xy` 1>: error calling eq: incompatible types for comparison'),
    ("eq int float", "{{eq 2 2.0}}", None,
     'template: t:1:2: executing "t" at <eq 2 2.0>: error calling eq: incompatible types for comparison'),
    ("lt bools", "{{lt true true}}", None,
     'template: t:1:2: executing "t" at <lt true true>: error calling lt: invalid type for comparison'),
    ("lt complex", "{{lt 1+0i 1+0i}}", None,
     'template: t:1:2: executing "t" at <lt 1+0i 1+0i>: error calling lt: invalid type for comparison'),
    ("lt missing", "{{lt .Missing 1}}", {},
     'template: t:1:2: executing "t" at <lt .Missing 1>: error calling lt: invalid type for comparison'),
    ("gt string int", "{{gt `1` 1}}", None,
     'template: t:1:2: executing "t" at <gt `1` 1>: error calling gt: incompatible types for comparison'),
    ("eq slices", "{{eq .SI .SI}}", tVal,
     'template: t:1:2: executing "t" at <eq .SI .SI>: error calling eq: non-comparable type [3 4 5]: []int'),
    ("eq one arg", "{{eq 1}}", None,
     'template: t:1:2: executing "t" at <eq 1>: error calling eq: missing argument for comparison'),
    ("eq with nil literal", "{{eq .X nil}}", tVal,
     'template: t:1:8: executing "t" at <nil>: cannot assign nil to reflect.Value'),
    ("wrong number of args for builtin", "{{not 1 2}}", None,
     'template: t:1:2: executing "t" at <not>: wrong number of args for not: want 1 got 2'),
    ("wrong number of args for and", "{{and}}", None,
     'template: t:1:2: executing "t" at <and>: wrong number of args for and: want at least 1 got 0'),
    ("wrong number of args for func", "{{oneArg}}", None,
     'template: t:1:2: executing "t" at <oneArg>: wrong number of args for oneArg: want 1 got 0'),
    ("too many args for func", '{{"x" | oneArg "y"}}', None,
     'template: t:1:8: executing "t" at <oneArg>: wrong number of args for oneArg: want 1 got 2'),
    ("printf non-string format", "{{1|printf}}", tVal,
     'template: t:1:4: executing "t" at <printf>: wrong type for value; expected string; got int'),
    ("range over string", "{{range .S}}{{end}}", tVal,
     'template: t:1:8: executing "t" at <.S>: range can\'t iterate over xyz'),
    ("range int two vars", "{{range $i, $e := 3}}{{end}}", None,
     'template: t:1:18: executing "t" at <3>: can\'t use 3 to iterate over more than one variable'),
    ("template not defined", '{{template "x"}}', None,
     'template: t:1:11: executing "t" at <{{template "x"}}>: template "x" not defined'),
    ("error in nested template names it",
     'line 1\nline 2\nline 3\n{{template "one" .}}\n{{define "one"}}{{template "two" .}}{{end}}\n'
     '{{define "two"}}{{template "three" .}}{{end}}\n{{define "three"}}{{index "hi" $}}{{end}}', 5,
     'template: t:7:20: executing "three" at <index "hi" $>: error calling index: index out of range: 5'),
    ("assign to undeclared", "{{$x = 1}}", None, 'template: t:1:7: executing "t" at <1>: undefined variable: $x'),
    ("map index with wrong key type", "{{index .MSI 10}}", tVal,
     'template: t:1:2: executing "t" at <index .MSI 10>: error calling index: value has type int; should be string'),
    ("method with too few args", "{{.Method1}}", tVal,
     'template: t:1:2: executing "t" at <.Method1>: wrong number of args for Method1: want 1 got 0'),
    ("method with too many args", "{{.Method0 1}}", tVal,
     'template: t:1:2: executing "t" at <.Method0>: wrong number of args for Method0: want 0 got 1'),
    ("can't print a function", "{{.BinaryFunc}}", tVal,
     'template: t:1:2: executing "t" at <{{.BinaryFunc}}>: can\'t print {{.BinaryFunc}} of type func'),
]


@pytest.mark.parametrize("name,text,data,want", ERR_CASES, ids=[c[0] for c in ERR_CASES])
def test_exec_errors(name: str, text: str, data: Any, want: str) -> None:
    t = Template(name="t", text=text, funcs=FUNCS)
    with pytest.raises(TemplateError) as ei:
        t.execute(data)
    assert str(ei.value) == want


def test_function_error_names_template_line_column_and_function() -> None:
    def key(path: str) -> str:
        raise RuntimeError(f"no such key {path!r}")

    src = "global\n" * 11 + '    {{key "x"}}\n'
    t = Template(name="haproxy.ctmpl", text=src, funcs={"key": key})
    with pytest.raises(TemplateError) as ei:
        t.execute({})
    assert str(ei.value) == (
        "template: haproxy.ctmpl:12:6: executing \"haproxy.ctmpl\" at <key \"x\">: "
        "error calling key: no such key 'x'"
    )


def test_piped_function_error_points_at_the_command() -> None:
    def boom(*_: Any) -> None:
        raise ValueError("bad")

    t = Template(name="t", text='{{ "a" | boom }}', funcs={"boom": boom})
    with pytest.raises(TemplateError, match=r'^template: t:1:9: executing "t" at <boom>: error calling boom: bad$'):
        t.execute(None)


def test_error_column_counts_bytes_like_go() -> None:
    t = Template(name="t", text="héllo\nwörld {{.X.Y}}")
    with pytest.raises(TemplateError) as ei:
        t.execute(1)
    assert str(ei.value).startswith('template: t:2:11: executing "t" at <.X.Y>')


def test_long_context_is_truncated_to_20_chars() -> None:
    t = Template(name="t", text="{{index .SI 1 2 3 4 5 6 7 8 9}}")
    with pytest.raises(TemplateError) as ei:
        t.execute(tVal)
    assert "at <index .SI 1 2 3 4 5 ...>" in str(ei.value)


def test_missing_key_zero() -> None:
    t = Template(name="t1", text="{{.x}} {{.y}}", missing_key="zero")
    assert t.execute({"x": 99}) == "99 0"


def test_missing_key_error() -> None:
    t = Template(name="t1", text="{{.x}} {{.y}}", missing_key="error")
    with pytest.raises(TemplateError) as ei:
        t.execute({"x": 99})
    assert str(ei.value) == 'template: t1:1:9: executing "t1" at <.y>: map has no entry for key "y"'


def test_missing_key_error_on_nil_data() -> None:
    t = Template(name="t1", text="{{.x}}", missing_key="error")
    with pytest.raises(TemplateError) as ei:
        t.execute(None)
    assert str(ei.value) == 'template: t1:1:2: executing "t1" at <.x>: nil data; no entry for key "x"'


def test_missing_key_error_does_not_affect_index() -> None:
    t = Template(name="t", text="[{{index . `y`}}]", missing_key="error")
    assert t.execute({"x": "a"}) == "[]"


def test_missing_key_option_is_validated() -> None:
    with pytest.raises(ValueError):
        Template(name="t", text="", missing_key="bogus")


def test_execute_template_renders_a_define() -> None:
    t = Template(name="root", text='{{define "part"}}<{{.}}>{{end}}root')
    assert t.execute(None) == "root"
    assert t.execute_template("part", 42) == "<42>"


def test_execute_template_unknown_name() -> None:
    t = Template(name="root", text="x")
    with pytest.raises(TemplateError) as ei:
        t.execute_template("nope", None)
    assert str(ei.value) == 'template: no template "nope" associated with template "root"'


def test_error_inside_define_executed_directly() -> None:
    t = Template(name="root", text='{{define "p"}}\n  {{.X.Y}}{{end}}')
    with pytest.raises(TemplateError) as ei:
        t.execute_template("p", 1)
    assert str(ei.value) == 'template: root:2:6: executing "p" at <.X.Y>: can\'t evaluate field X in type int'


def test_wants_template_marker_gets_the_template() -> None:
    def execute_template(tmpl: Template, name: str, dot: Any = None) -> str:
        return tmpl.execute_template(name, dot)

    execute_template.wants_template = True  # type: ignore[attr-defined]
    t = Template(
        name="t",
        text='{{define "b"}}[{{.}}]{{end}}{{executeTemplate "b" 7}}{{executeTemplate "b"}}',
        funcs={"executeTemplate": execute_template},
    )
    assert t.execute(None) == "[7][<no value>]"


def test_functions_receive_none_for_missing_values() -> None:
    seen: list[Any] = []

    def f(*a: Any) -> str:
        seen.extend(a)
        return "ok"

    t = Template(name="t", text="{{f .missing nil}}", funcs={"f": f})
    assert t.execute({}) == "ok"
    assert seen == [None, None]


def test_generator_functions_are_channels() -> None:
    def loop(*args: int):
        start, stop = (0, args[0]) if len(args) == 1 else args
        yield from range(start, stop)

    t = Template(name="t", text="{{range loop 3}}{{.}}{{end}}|{{range $i := loop 2 5}}{{$i}}{{end}}", funcs={"loop": loop})
    assert t.execute(None) == "012|234"


def test_user_funcs_override_builtins() -> None:
    t = Template(name="t", text="{{len `abc`}}", funcs={"len": lambda s: "custom"})
    assert t.execute(None) == "custom"


def test_break_func_makes_break_an_identifier() -> None:
    t = Template(name="t", text="{{range .}}{{break 20}}{{end}}", funcs={"break": lambda x: x})
    assert t.execute([1]) == "20"


def test_parse_once_execute_many() -> None:
    t = Template(name="t", text="{{range .}}{{.}},{{end}}")
    assert [t.execute(list(range(n))) for n in range(3)] == ["", "0,", "0,1,"]


def test_no_value_is_falsy_and_prints_as_go_does() -> None:
    assert not NO_VALUE
    assert repr(NO_VALUE) == "<no value>"


def test_custom_delimiters() -> None:
    for left, right in (("", ""), ("{{", "}}"), ("<<", ">>"), ("|", "|"), ("(日)", "(本)"), ("[[", "]]")):
        tl, tr = left or "{{", right or "}}"
        text = tl + ".Str" + tr + tl + "/*comment*/" + tr + tl + '"' + tl + '"' + tr
        t = Template(name="delims", text=text, left_delim=left, right_delim=right)
        assert t.execute({"Str": "Hello, world"}) == "Hello, world" + tl


def test_recursive_tree_with_paren_delimiters_and_trimming() -> None:
    """Go's TestTree: a recursive define, custom "(" ")" delimiters, trim markers everywhere."""
    tree_template = """
\t(- define "tree" -)
\t[
\t\t(- .Val -)
\t\t(- with .Left -)
\t\t\t(template "tree" . -)
\t\t(- end -)
\t\t(- with .Right -)
\t\t\t(- template "tree" . -)
\t\t(- end -)
\t]
\t(- end -)
"""

    def node(val: int, left: Any = None, right: Any = None) -> dict[str, Any]:
        return {"Val": val, "Left": left, "Right": right}

    tree = node(1, node(2, node(3, node(4)), node(5, node(6))), node(7, node(8, node(9)), node(10, node(11))))
    t = Template(name="root", text=tree_template, left_delim="(", right_delim=")")
    assert t.execute_template("tree", tree) == "[1[2[3[4]][5[6]]][7[8[9]][10[11]]]]"


def test_consul_template_style_objects() -> None:
    class Scratch:
        def __init__(self) -> None:
            self.values: dict[str, Any] = {}

        def Set(self, k: str, v: Any) -> str:
            self.values[k] = v
            return ""

        def Get(self, k: str) -> Any:
            return self.values.get(k)

    scratch = Scratch()
    t = Template(
        name="t",
        text='{{scratch.Set "a" "b"}}{{scratch.Get "a"}}|{{with $s := scratch}}{{$s.Get "a"}}{{end}}',
        funcs={"scratch": lambda: scratch},
    )
    assert t.execute(None) == "b|b"


def test_execute_template_func_is_consul_templates_execute_template() -> None:
    t = Template(
        name="t",
        text='{{define "b"}}<{{.}}>{{end}}{{executeTemplate "b" 1}}{{executeTemplate "b"}}',
        funcs={"executeTemplate": execute_template_func},
    )
    assert t.execute(None) == "<1><<no value>>"
    bad = Template(name="t", text='{{define "b"}}{{end}}{{executeTemplate "b" 1 2}}',
                   funcs={"executeTemplate": execute_template_func})
    with pytest.raises(TemplateError) as ei:
        bad.execute(None)
    assert str(ei.value) == (
        'template: t:1:23: executing "t" at <executeTemplate "b" ...>: error calling executeTemplate: '
        "executeTemplate: wrong number of arguments, expected 1 or 2, got 3"
    )


def test_execute_template_error_inside_the_define_is_wrapped() -> None:
    t = Template(
        name="t",
        text='{{define "b"}}{{.X.Y}}{{end}}{{executeTemplate "b" 1}}',
        funcs={"executeTemplate": execute_template_func},
    )
    with pytest.raises(TemplateError) as ei:
        t.execute(None)
    assert str(ei.value) == (
        'template: t:1:31: executing "t" at <executeTemplate "b" ...>: error calling executeTemplate: '
        'template: t:1:18: executing "b" at <.X.Y>: can\'t evaluate field X in type int'
    )


def test_failing_generator_is_a_template_error() -> None:
    def gen():
        yield 1
        raise ValueError("backend went away")

    t = Template(name="t", text="{{range .}}{{.}}{{end}}")
    with pytest.raises(TemplateError) as ei:
        t.execute(gen())
    assert str(ei.value) == (
        'template: t:1:8: executing "t" at <.>: error receiving from chan interface {}: backend went away'
    )


def test_infinite_template_recursion_is_an_error() -> None:
    t = Template(name="t", text='{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}')
    with pytest.raises(TemplateError, match=r"exceeded maximum template depth \(100\)"):
        t.execute(None)


def test_per_execution_funcs_override_parse_time_funcs() -> None:
    t = Template(name="t", text='{{define "d"}}{{who}}{{end}}{{who}}-{{executeTemplate "d"}}',
                 funcs={"who": lambda: "parse", "executeTemplate": execute_template_func})
    assert t.execute(None) == "parse-parse"
    assert t.execute(None, funcs={"who": lambda: "run1"}) == "run1-run1"
    assert t.execute(None) == "parse-parse"
    assert t.execute_template("d", None, funcs={"who": lambda: "run2"}) == "run2"


def test_nested_other_template_uses_its_own_funcs() -> None:
    inner = Template(name="inner", text="{{who}}", funcs={"who": lambda: "inner"})
    outer = Template(name="outer", text="{{who}}/{{render}}",
                     funcs={"who": lambda: "outer", "render": lambda: inner.execute(None)})
    assert outer.execute(None, funcs={"who": lambda: "outer2"}) == "outer2/inner"


MORE_ERRORS = [
    ("slice of nil", "{{slice .Empty0}}", "error calling slice: slice of untyped nil"),
    ("too many slice indexes", "{{slice .SI 1 2 3 4}}", "error calling slice: too many slice indexes: 4"),
    ("slice of int", "{{slice 3 1}}", "error calling slice: can't slice item of type int"),
    ("slice 3-index order", "{{slice .SI 0 2 1}}", "error calling slice: invalid slice index: 2 > 1"),
    ("index string at len", "{{index .S 3}}", "error calling index: reflect: string index out of range"),
    ("index with a missing value", "{{index .SI .MXI.missing}}", "error calling index: cannot index slice/array with nil"),
    ("call non-function", "{{call .I}}", "error calling call: non-function of type int"),
    ("call of missing", "{{call .MXI.missing}}", "error calling call: call of nil"),
    ("len of missing key", "{{len .MXI.missing}}", "error calling len: reflect: call of reflect.Value.Type on zero Value"),
    ("eq map and slice", "{{eq .MSIone .SI}}",
     "error calling eq: non-comparable types map[one:1]: map[string]int, []int: [3 4 5]"),
    ("eq maps", "{{eq .MSIone .MSIone}}", "error calling eq: non-comparable type map[one:1]: map[string]int"),
    ("lt slices", "{{lt .SI .SI}}", "error calling lt: invalid type for comparison"),
    ("lt int and slice", "{{lt 1 .SI}}", "error calling lt: invalid type for comparison"),
]


class _Obj:
    pass


@pytest.mark.parametrize("name,text,want", MORE_ERRORS, ids=[c[0] for c in MORE_ERRORS])
def test_builtin_errors(name: str, text: str, want: str) -> None:
    t = Template(name="t", text=text)
    with pytest.raises(TemplateError) as ei:
        t.execute(tVal)
    assert str(ei.value).endswith(": " + want)


def test_eq_on_objects_compares_identity_or_equality() -> None:
    a, b = _Obj(), _Obj()
    t = Template(name="t", text="{{eq .A .A}} {{eq .A .B}} {{eq .A .N}} {{ne .N .A}}")
    assert t.execute({"A": a, "B": b, "N": None}) == "true false false true"


def test_eq_bool_and_int_are_incompatible() -> None:
    with pytest.raises(TemplateError, match="incompatible types for comparison"):
        Template(name="t", text="{{eq true 1}}").execute(None)


def test_range_with_single_assigned_variable() -> None:
    t = Template(name="t", text="{{$e := 0}}{{range $e = .}}{{end}}{{$e}}")
    assert t.execute([4, 5, 6]) == "6"


def test_mapping_subclass_methods_are_callable() -> None:
    class Meta(dict):
        def Upper(self, key: str) -> str:
            return self[key].upper()

    t = Template(name="t", text='{{.a}} {{.Upper "a"}} {{.nope}}')
    assert t.execute(Meta(a="x")) == "x X <no value>"


def test_property_raising_is_a_template_error() -> None:
    class Svc:
        @property
        def Address(self) -> str:
            raise RuntimeError("not resolved")

    with pytest.raises(TemplateError) as ei:
        Template(name="t", text="{{.Address}}").execute(Svc())
    assert str(ei.value) == 'template: t:1:2: executing "t" at <.Address>: error calling Address: not resolved'


def test_unknown_function_at_execution_time() -> None:
    t = Template(name="t", text="{{f}}", funcs={"f": lambda: 1})
    del t.funcs["f"]
    with pytest.raises(TemplateError) as ei:
        t.execute(None)
    assert str(ei.value) == 'template: t:1:2: executing "t" at <f>: "f" is not a defined function'


def test_optional_arguments_in_funcs() -> None:
    def f(a: str, b: str = "B") -> str:
        return a + b

    t = Template(name="t", text="{{f `a`}} {{f `a` `b`}}", funcs={"f": f})
    assert t.execute(None) == "aB ab"
    with pytest.raises(TemplateError, match="wrong number of args for f: want at most 2 got 3"):
        Template(name="t", text="{{f `a` `b` `c`}}", funcs={"f": f}).execute(None)
    with pytest.raises(TemplateError, match="wrong number of args for f: want at least 1 got 0"):
        Template(name="t", text="{{f}}", funcs={"f": f}).execute(None)


def test_builtin_functions_as_funcs_without_signature() -> None:
    t = Template(name="t", text="{{upper .}}", funcs={"upper": str.upper})
    assert t.execute("abc") == "ABC"


def test_js_escapes_control_and_non_printable_characters() -> None:
    t = Template(name="t", text="{{js .}}")
    assert t.execute("a\tb\u2028c") == "a\\u0009b\\u2028c"


def test_html_and_urlquery_of_several_values() -> None:
    t = Template(name="t", text="{{html 1 2 `<`}}|{{urlquery `a` 1 2}}")
    assert t.execute(None) == "1 2&lt;|a1+2"


def test_error_classes() -> None:
    from meshctl.template.gotemplate import TemplateExecError, TemplateParseError

    with pytest.raises(TemplateParseError):
        Template(name="t", text="{{")
    with pytest.raises(TemplateExecError):
        Template(name="t", text="{{.X.Y}}").execute(1)
    assert issubclass(TemplateParseError, TemplateError) and issubclass(TemplateExecError, TemplateError)


def test_else_chains_keep_outer_pipeline_variables() -> None:
    assert Template(name="t", text="{{with $x := 0}}{{else with $y := 1}}{{$x}}{{$y}}{{end}}").execute(None) == "01"
    assert Template(name="t", text="{{if $x := 0}}{{else if $y := 2}}{{$x}}{{$y}}{{end}}").execute(None) == "02"
