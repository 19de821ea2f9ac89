import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import rmsnorm  # noqa: E402

DTYPES = [torch.float16, torch.float32] + ([torch.bfloat16] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 64), (2, 5, 96)])
def test_rmsnorm_matches_reference(shape, dtype, device, tol):
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device, dtype=dtype)
    w = torch.randn(shape[-1], device=device, dtype=dtype)
    y = rmsnorm.rmsnorm(x, w, eps=1e-5)
    assert y.shape == x.shape and y.dtype == dtype
    torch.testing.assert_close(y, rmsnorm.reference(x, w, eps=1e-5), **tol(dtype))


def test_flops_and_bytes_by_hand():
    # 2 rows of 8: 4 * 16 = 64 flops; fp16 x and y (32 elements) plus the weight (8): 40 * 2 bytes.
    assert rmsnorm.flops(2, 8) == 64
    assert rmsnorm.bytes(2, 8) == 80
