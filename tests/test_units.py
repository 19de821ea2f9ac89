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


@pytest.mark.parametrize("value,family", [
    (float("inf"), "flops_per_s"),  # YAML .inf
    (float("nan"), "bytes_per_s"),  # YAML .nan
    ("1e300 GiB", "bytes"),  # finite as written, inf once scaled
    (10**400, "bytes"),  # an int too large for a float
    ("2 EiB", "bytes"),  # over MAX_QUANTITY
    ("2 ZFLOP/s", "flops_per_s"),
    (True, "bytes"),
    ([1], "bytes"),
])
def test_rejects_non_finite_and_over_ceiling(value, family):
    with pytest.raises(ValueError):
        parse_quantity(value, family)


def test_ceiling_itself_is_accepted():
    assert parse_quantity("1 EiB", "bytes") == 2.0**60
    assert parse_quantity("1 ZFLOP/s", "flops_per_s") == 1e21


@pytest.mark.parametrize("value,family,text", [
    (2.0**60, "bytes", "1 EiB"),
    (1.5 * 2**40, "bytes", "1.5 TiB"),
    (80 * 2**30, "bytes", "80 GiB"),
    (3.35e12, "bytes_per_s", "3.35 TB/s"),
    (989e12, "flops_per_s", "989 TFLOP/s"),
    (1e21, "flops_per_s", "1 ZFLOP/s"),
    (700.0, "watts", "700 W"),
    (1e9, "seconds", "1,000,000,000 s"),
])
def test_format_quantity_reads_back(value, family, text):
    from simulator.units import format_quantity

    assert format_quantity(value, family) == text
    assert parse_quantity(text, family) == pytest.approx(value, rel=1e-3)
