import pytest

from swarmpy.cli.value_parsers import (
    PortSpec, normalize_env, parse_env_file, parse_filters, parse_key_value, parse_placement_pref, parse_port,
    parse_scale_spec,
)


@pytest.mark.parametrize("text, ports", [
    ("8080:80", [PortSpec(target=80, published=8080)]),
    ("80", [PortSpec(target=80)]),
    ("53:53/udp", [PortSpec(target=53, published=53, protocol="udp")]),
    ("8000-8001:80-81", [PortSpec(target=80, published=8000), PortSpec(target=81, published=8001)]),
    ("mode=host,target=80,published=8080", [PortSpec(target=80, published=8080, mode="host")]),
    ("target=80,protocol=udp", [PortSpec(target=80, protocol="udp")]),
])
def test_parse_port(text, ports):
    assert parse_port(text) == ports


@pytest.mark.parametrize("text", ["abc:80", "8080:", "80/foo", "mode=bridge,target=80", "published=80",
                                  "8000-8002:80-81", "70000:80", "1.2.3.4:80:80"])
def test_parse_port_rejects(text):
    with pytest.raises(ValueError):
        parse_port(text)


def test_env_file_skips_comments_and_imports_bare_names():
    content = "# comment\n\nA=1\n  B=two words\nHOME\nMISSING\nC=\n"
    assert parse_env_file(content, {"HOME": "/root"}) == ["A=1", "B=two words", "HOME=/root", "C="]


def test_env_file_rejects_whitespace_in_names():
    with pytest.raises(ValueError, match="whitespaces"):
        parse_env_file("BAD NAME=1\n", {})


def test_normalize_env():
    assert normalize_env("A=1") == "A=1"
    assert normalize_env("USER", {"USER": "me"}) == "USER=me"
    assert normalize_env("UNSET", {}) is None
    with pytest.raises(ValueError):
        normalize_env("=x")


def test_parse_key_value():
    assert parse_key_value("a=b=c") == ("a", "b=c")
    assert parse_key_value("flag") == ("flag", "")
    with pytest.raises(ValueError):
        parse_key_value("=v")


def test_parse_scale_spec():
    assert parse_scale_spec("web=5") == ("web", 5)
    with pytest.raises(ValueError, match="invalid scale specifier 'web'."):
        parse_scale_spec("web")
    with pytest.raises(ValueError, match="invalid replicas value x"):
        parse_scale_spec("web=x")
    with pytest.raises(ValueError, match="invalid replicas value -1"):
        parse_scale_spec("web=-1")


def test_parse_filters():
    assert parse_filters(["name=web", "Name=api", "id=abc"], ("name", "id")) == {"name": ["web", "api"], "id": ["abc"]}
    with pytest.raises(ValueError, match="invalid filter 'bogus'"):
        parse_filters(["bogus=1"], ("name",))
    with pytest.raises(ValueError, match="bad format"):
        parse_filters(["name"], ("name",))


def test_parse_placement_pref():
    assert parse_placement_pref("spread=node.labels.zone") == "node.labels.zone"
    with pytest.raises(ValueError):
        parse_placement_pref("binpack=x")
