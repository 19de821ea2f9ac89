import pytest

from simulator.units import parse_quantity


@pytest.mark.parametrize("text,family,expected", [
    ("4.8 TB/s", "bytes_per_s", 4.8e12),
    ("141 GB", "bytes", 141e9),
    ("80 GiB", "bytes", 80 * 2**30),
    ("989 TFLOP/s", "flops_per_s", 989e12),
    ("1,979 TFLOPS", "flops_per_s", 1979e12),
    ("700 W", "watts", 700.0),
    ("10 us", "seconds", 10e-6),
    ("4 ms", "seconds", 4e-3),
    (3.5, "bytes", 3.5),
    ("12", "bytes", 12.0),
])
def test_parse(text, family, expected):
    assert parse_quantity(text, family) == pytest.approx(expected)


@pytest.mark.parametrize("text,family", [("4.8 TB", "bytes_per_s"), ("fast", "bytes"), ("3 XB", "bytes")])
def test_rejects_wrong_units(text, family):
    with pytest.raises(ValueError):
        parse_quantity(text, family)
