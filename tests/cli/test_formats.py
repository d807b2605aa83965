"""`--format` templates, against golden strings printed by docker 28.2's CLI for the same templates over
a service created with the same flags (`docker service create --no-resolve-image --name fmt --replicas 0
-l team=blue -l tier=web --container-label c=1 -e A=1 --hostname '{{.Service.Name}}-{{.Task.Slot}}'
--cap-add net_admin --ulimit nofile=10:20 --limit-pids 5 --mount type=tmpfs,target=/t,tmpfs-size=1m
--log-driver json-file --log-opt max-size=1m swarmpy-test/busybox sleep 1000`, on a real Docker swarm)."""

from __future__ import annotations

import pytest

from swarmpy import gotemplate
from swarmpy.api import control_pb2, objects_pb2
from swarmpy.cli import formats
from swarmpy.engineapi.convert import to_json as convert
from swarmpy.cli.errors import CliError
from swarmpy.cli.listings import SERVICE_COLUMNS, service_row
from swarmpy.cli.main import cli
from swarmpy.cli.service_spec import build_service_spec

FLAGS = ["--name", "fmt", "--replicas", "0", "-l", "team=blue", "-l", "tier=web", "--container-label", "c=1",
         "-e", "A=1", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}", "--cap-add", "net_admin",
         "--ulimit", "nofile=10:20", "--limit-pids", "5", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
         "--log-driver", "json-file", "--log-opt", "max-size=1m", "--no-resolve-image",
         "swarmpy-test/busybox:latest", "sleep", "1000"]

INSPECT_GOLDEN = {
    "{{.Spec.Name}}": "fmt",
    "{{json .Spec.Labels}}": '{"team":"blue","tier":"web"}',
    '{{index .Spec.Labels "team"}}|{{index .Spec.Labels "nope"}}|': "blue||",
    "{{.Spec.Labels}}": "map[team:blue tier:web]",
    "{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}": "team=blue;tier=web;",
    "{{range .Spec.TaskTemplate.ContainerSpec.Args}}<{{.}}>{{end}}": "<sleep><1000>",
    "{{.Spec.Mode.Replicated.Replicas}}": "0",
    "{{if .Spec.Labels.team}}has team{{else}}no team{{end}}": "has team",
    "{{json .Spec.TaskTemplate.ContainerSpec.Ulimits}}": '[{"Name":"nofile","Hard":20,"Soft":10}]',
    "{{json .Spec.TaskTemplate.ContainerSpec.CapabilityAdd}}": '["CAP_NET_ADMIN"]',
    "{{json .Spec.TaskTemplate.LogDriver}}": '{"Name":"json-file","Options":{"max-size":"1m"}}',
    "{{json .Spec.TaskTemplate.Resources.Limits}}": '{"Pids":5}',
    "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}": '[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576}}]',
    "{{.Spec.TaskTemplate.ContainerSpec.Hostname}}": "{{.Service.Name}}-{{.Task.Slot}}",
    "{{.Spec.TaskTemplate.ContainerSpec.Dir}}|": "|",
    '{{upper .Spec.Name}} {{len .Spec.Labels}} {{join .Spec.TaskTemplate.ContainerSpec.Args ","}}': "FMT 2 sleep,1000",
}

LS_GOLDEN = {
    "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}|{{.Ports}}|": "fmt replicated 0/0 swarmpy-test/busybox:latest||\n",
    "table {{.Name}}\\t{{.Mode}}\\t{{.Replicas}}": "NAME      MODE         REPLICAS\nfmt       replicated   0/0\n",
    "table {{.Name}}\\t{{.Image}}\\t": "NAME      IMAGE                         \nfmt       swarmpy-test/busybox:latest   \n",
    "{{json .}}": '{"ID":"xe4z4njfh0dh","Image":"swarmpy-test/busybox:latest","Mode":"replicated","Name":"fmt",'
                  '"Ports":"","Replicas":"0/0"}\n',
}


@pytest.fixture(scope="module")
def service() -> objects_pb2.Service:
    create = cli.commands["service"].commands["create"]
    context = create.make_context("create", list(FLAGS))
    spec = build_service_spec(context.params)
    return objects_pb2.Service(id="xe4z4njfh0dhq3k7m8w2v1a0b", spec=spec)


@pytest.mark.parametrize("template", sorted(INSPECT_GOLDEN))
def test_inspect_templates_print_what_docker_prints(service, template):
    rendered = formats.render_inspected(formats.inspect_template(template), convert.service(service), "swarm.Service")
    assert rendered == INSPECT_GOLDEN[template]


def test_inspect_errors_read_as_docker(service):
    with pytest.raises(CliError) as unknown:
        formats.render_inspected(formats.inspect_template("{{.Nope}}"), convert.service(service), "swarm.Service")
    assert unknown.value.message == ('template parsing error: template: :1:2: executing "" at <.Nope>: '
                                     "can't evaluate field Nope in type swarm.Service")
    with pytest.raises(CliError) as unclosed:
        formats.inspect_template("{{.Spec.Name")
    assert unclosed.value.message == "template parsing error: template: :1: unclosed action"


@pytest.mark.parametrize("template", sorted(LS_GOLDEN))
def test_service_ls_templates_print_what_docker_prints(service, template, capsys):
    status = control_pb2.ServiceStatus(service_id=service.id, running_tasks=0, desired_tasks=0)
    row = service_row(service, status)
    formats.print_rows(None, SERVICE_COLUMNS, [row], template, type_name="*service.serviceContext",
                       default_table=lambda: pytest.fail("not the default table"))
    assert capsys.readouterr().out == LS_GOLDEN[template]


def test_ls_unknown_field_names_docker_context(service):
    row = service_row(service, None)
    with pytest.raises(CliError) as refused:
        formats.print_rows(None, SERVICE_COLUMNS, [row], "{{.Nope}}", type_name="*service.serviceContext",
                           default_table=lambda: None)
    assert refused.value.message.endswith("can't evaluate field Nope in type *service.serviceContext")


def test_table_alone_and_empty_listings(capsys):
    shown = []
    formats.print_rows(None, SERVICE_COLUMNS, [], "table", default_table=lambda: shown.append(True))
    assert shown == [True]
    formats.print_rows(None, SERVICE_COLUMNS, [], "{{.Name}}", default_table=lambda: None)
    assert capsys.readouterr().out == ""
    formats.print_rows(None, SERVICE_COLUMNS, [], "table {{.Name}}\\t{{.Replicas}}", default_table=lambda: None)
    assert capsys.readouterr().out == "NAME      REPLICAS\n"


@pytest.mark.parametrize("template, message", [
    ("{{.ID", "unclosed action"),
    ("{{if .ID}}x", "unexpected EOF"),
    ("{{foo .ID}}", 'function "foo" not defined'),
    ("{{end}}", "unexpected {{end}}"),
    ("{{}}", "missing value for command"),
    ("{{.ID}", "bad character U+007D '}'"),
])
def test_parse_errors_are_gos(template, message):
    # the messages docker 28.2 prints for these templates (`docker image ls --format ...`)
    with pytest.raises(gotemplate.TemplateError) as refused:
        gotemplate.parse(template)
    assert str(refused.value) == f"template: :1: {message}"


def test_template_language():
    data = {"L": [1, 2], "M": {"b": 2, "a": 1}, "S": "x", "E": []}
    cases = {
        "{{range $i, $v := .L}}{{$i}}:{{$v}} {{end}}": "0:1 1:2 ",
        "{{range .E}}x{{else}}empty{{end}}": "empty",
        "{{with .S}}[{{.}}]{{end}}{{with .E}}no{{end}}": "[x]",
        "{{if and .S (not .E)}}yes{{end}}": "yes",
        "{{if eq .S \"y\" \"x\"}}eq{{end}} {{ne 1 2}} {{lt 1 2}}": "eq true true",
        "{{- .S -}} \n {{printf \"%s=%d\" .S 3}}": "xx=3",
        "{{$x := .S}}{{$x}}{{$.S}}": "xx",
        "{{.M}} {{index .M \"a\"}} {{len .M}}": "map[a:1 b:2] 1 2",
        "{{.S | upper | printf \"%s!\"}}": "X!",
        "{{json .}}": '{"L":[1,2],"M":{"b":2,"a":1},"S":"x","E":[]}',
        "{{title \"hello world\"}} {{pad \"a\" 1 2}}| {{truncate \"abcdef\" 3}}": "Hello World  a  | abc",
    }
    for template, expected in cases.items():
        assert gotemplate.parse(template).execute(data) == expected, template


def test_a_callable_field_is_a_method_taking_arguments():
    from swarmpy import gotemplate

    template = gotemplate.parse('{{.Label "a"}}-{{"b" | .Label}}')
    assert template.execute({"Label": lambda name: name.upper()}) == "A-B"
    with pytest.raises(gotemplate.TemplateExecError, match="can't give argument to non-function .Name"):
        gotemplate.parse('{{.Name "x"}}').execute({"Name": "n"})
    with pytest.raises(gotemplate.TemplateExecError, match="wrong number of args for Label"):
        gotemplate.parse('{{.Label "x" "y"}}').execute({"Label": lambda name: name})
