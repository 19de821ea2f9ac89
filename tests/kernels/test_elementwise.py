import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import elementwise as ew  # noqa: E402

DTYPES = [torch.float16, torch.float32] + ([torch.bfloat16] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_and_mul_matches_reference(dtype, device, tol):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2 * 40, device=device, dtype=dtype)
    out = ew.silu_and_mul(x, block=16)              # 3 column chunks of 16 over d = 40
    assert out.shape == (2, 3, 40) and out.dtype == dtype
    torch.testing.assert_close(out, ew.reference(x), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_add(dtype, device):
    x = torch.randn(3, 70, device=device, dtype=dtype)
    y = torch.randn(3, 70, device=device, dtype=dtype)
    assert torch.equal(ew.add(x, y, block=64), ew.add_reference(x, y))


def test_flops_and_bytes_by_hand():
    # silu_and_mul, 2 rows, d = 4: (4 + 1) * 8 = 40 flops; read 16, write 8 fp16 elements.
    assert ew.flops(2, 4) == 40
    assert ew.bytes(2, 4) == 48
    assert ew.add_flops(10) == 10 and ew.add_bytes(10) == 60
