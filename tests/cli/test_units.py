import pytest

from swarmpy import units
from swarmpy.units import HOUR, MILLISECOND, MINUTE, SECOND


@pytest.mark.parametrize("text, nanos", [
    ("0", 0),
    ("10s", 10 * SECOND),
    ("300ms", 300 * MILLISECOND),
    ("1h2m3.5s", HOUR + 2 * MINUTE + 3 * SECOND + 500 * MILLISECOND),
    ("1.5h", HOUR + 30 * MINUTE),
    ("-1m", -MINUTE),
    ("+5s", 5 * SECOND),
    ("2160h0m0s", 2160 * HOUR),
    ("1us", 1000),
    ("1\u00b5s", 1000),
    ("7ns", 7),
    (".5s", 500 * MILLISECOND),
])
def test_parse_duration_accepts_go_syntax(text, nanos):
    assert units.parse_duration(text) == nanos


@pytest.mark.parametrize("text, message", [
    ("10", 'time: missing unit in duration "10"'),
    ("abc", 'time: invalid duration "abc"'),
    ("", 'time: invalid duration ""'),
    ("5x", 'time: unknown unit "x" in duration "5x"'),
    ("1h-2m", 'time: unknown unit "h-" in duration "1h-2m"'),
])
def test_parse_duration_rejects_like_go(text, message):
    with pytest.raises(ValueError) as error:
        units.parse_duration(text)
    assert str(error.value) == message


@pytest.mark.parametrize("nanos, text", [
    (0, "0s"),
    (2160 * HOUR, "2160h0m0s"),
    (5 * SECOND, "5s"),
    (300 * MILLISECOND, "300ms"),
    (HOUR + 2 * MINUTE + 3 * SECOND + 500 * MILLISECOND, "1h2m3.5s"),
    (1500, "1.5\u00b5s"),
    (7, "7ns"),
    (90 * SECOND, "1m30s"),
    (-MINUTE, "-1m0s"),
    (1_000_000_001, "1.000000001s"),
])
def test_format_duration_matches_go_string(nanos, text):
    assert units.format_duration(nanos) == text


@pytest.mark.parametrize("text", ["1h2m3.5s", "300ms", "2160h0m0s", "1.5\u00b5s", "45m0s"])
def test_format_parse_roundtrip(text):
    assert units.format_duration(units.parse_duration(text)) == text


@pytest.mark.parametrize("text, size", [
    ("512m", 512 * 1024**2),
    ("1g", 1024**3),
    ("1.5GiB", int(1.5 * 1024**3)),
    ("100", 100),
    ("64k", 65536),
    ("2 MB", 2 * 1024**2),
    ("1b", 1),
])
def test_parse_memory_bytes_as_docker_ram_in_bytes(text, size):
    assert units.parse_memory_bytes(text) == size


@pytest.mark.parametrize("text", ["abc", "", "12q", "-1m", "1.5.5x"])
def test_parse_memory_bytes_rejects(text):
    with pytest.raises(ValueError, match="invalid size"):
        units.parse_memory_bytes(text)


@pytest.mark.parametrize("size, text", [(512 * 1024**2, "512MiB"), (1024, "1KiB"), (100, "100B"),
                                        (int(1.952 * 1024**3), "1.952GiB")])
def test_format_bytes_binary(size, text):
    assert units.format_bytes(size) == text


def test_human_size_decimal():
    assert units.human_size(1_500_000) == "1.5MB"


@pytest.mark.parametrize("text, nanos", [("0.5", 500_000_000), ("2", 2_000_000_000), ("0.001", 1_000_000),
                                         ("1.25", 1_250_000_000)])
def test_parse_nano_cpus(text, nanos):
    assert units.parse_nano_cpus(text) == nanos


def test_parse_nano_cpus_errors():
    with pytest.raises(ValueError, match="failed to parse abc as a rational number"):
        units.parse_nano_cpus("abc")
    with pytest.raises(ValueError, match="value is too precise"):
        units.parse_nano_cpus("0.0000000001")


def test_format_nano_cpus():
    assert units.format_nano_cpus(500_000_000) == "0.5"
    assert units.format_nano_cpus(2_000_000_000) == "2"


@pytest.mark.parametrize("nanos, text", [
    (0, "Less than a second"),
    (SECOND, "1 second"),
    (3 * SECOND, "3 seconds"),
    (59 * SECOND, "59 seconds"),
    (60 * SECOND, "About a minute"),
    (2 * MINUTE, "2 minutes"),
    (59 * MINUTE, "59 minutes"),
    (60 * MINUTE, "About an hour"),
    (3 * HOUR, "3 hours"),
    (47 * HOUR, "47 hours"),
    (3 * 24 * HOUR, "3 days"),
    (3 * 7 * 24 * HOUR, "3 weeks"),
    (90 * 24 * HOUR, "3 months"),
    (3 * 365 * 24 * HOUR, "3 years"),
])
def test_human_duration_matches_go_units(nanos, text):
    assert units.human_duration(nanos) == text
