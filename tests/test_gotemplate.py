"""swarmpy.gotemplate: the Go text/template forms added for docker's --format users: named templates
(define/template/block), break/continue in range, slice, and parse errors on the line Go names."""

import pytest

from swarmpy import gotemplate


def run(source: str, data=None) -> str:
    return gotemplate.parse(source).execute(data)


def test_break_and_continue_in_range():
    source = "{{range .}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}},{{end}}"
    assert run(source, [0, 1, 2, 3, 4]) == "0,2,"
    assert run("{{range $i, $v := .}}{{if $i}}{{break}}{{end}}{{$v}}{{end}}", ["a", "b"]) == "a"


def test_named_templates():
    assert run('{{define "row"}}[{{.Name}}]{{end}}{{range .}}{{template "row" .}}{{end}}',
               [{"Name": "a"}, {"Name": "b"}]) == "[a][b]"
    assert run('{{template "x"}}{{define "x"}}{{.}}{{end}}') == "<no value>"  # no pipeline: dot is nil
    assert run('{{block "b" .}}<{{.}}>{{end}}|{{template "b" "again"}}', "d") == "<d>|<again>"
    assert run('{{define "d"}}{{$}}{{end}}{{template "d" .A}}', {"A": 7}) == "7"  # $ is the call's dot


def test_slice():
    assert run("{{slice . 1 3}}|{{slice . 2}}|{{slice .}}", [1, 2, 3, 4]) == "[2 3]|[3 4]|[1 2 3 4]"
    assert run('{{slice "hello" 1 3}}') == "el"


@pytest.mark.parametrize("source, data, message", [
    ('{{template "nope"}}', None, 'template: :1:2: executing "" at <{{template "nope"}}>: template "nope" not defined'),
    ("{{slice . 3 1}}", [1, 2, 3], "error calling slice: invalid slice index: 3 > 1"),
    ("{{slice . 9}}", [1], "error calling slice: index out of range: 9"),
    ("{{slice 3 1}}", None, "error calling slice: can't slice item of type int"),
    ('{{define "r"}}{{template "r"}}{{end}}{{template "r"}}', None, "exceeded maximum template depth"),
])
def test_execution_errors(source, data, message):
    with pytest.raises(gotemplate.TemplateExecError) as failed:
        run(source, data)
    assert message in str(failed.value)


@pytest.mark.parametrize("source, message", [
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .}}{{continue 1}}{{end}}", "template: :1: unexpected 1 in {{continue}}"),
    ("a\nb\n{{if .A}}\nx", "template: :4: unexpected EOF"),
    ("a\n\n{{.Name", "template: :3: unclosed action"),
    ("x\n{{range .}}{{end}}{{end}}", "template: :2: unexpected {{end}}"),
    ('{{if .}}{{define "z"}}{{end}}{{end}}', "template: :1: unexpected {{define}}"),
    ("one\ntwo {{.A | nosuch}}", 'template: :2: function "nosuch" not defined'),
])
def test_parse_errors_name_the_line(source, message):
    with pytest.raises(gotemplate.TemplateError) as failed:
        gotemplate.parse(source)
    assert str(failed.value) == message
