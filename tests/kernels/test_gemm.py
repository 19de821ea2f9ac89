import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import gemm  # noqa: E402

# bf16 only on a GPU: the Triton interpreter computes bf16 wrongly.
DTYPES = [torch.float16, torch.float32] + ([torch.bfloat16] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M", [1, 17, 64])
def test_gemm_matches_reference(M, dtype, device, tol):
    torch.manual_seed(M)
    a = torch.randn(M, 72, device=device, dtype=dtype)       # K = 72, N = 88: not block multiples
    b = torch.randn(72, 88, device=device, dtype=dtype)
    c = gemm.gemm(a, b)
    assert c.shape == (M, 88) and c.dtype == dtype
    torch.testing.assert_close(c, gemm.reference(a, b), **tol(dtype))


def test_gemm_grouped_ordering_covers_every_tile(device, tol):
    """Small tiles: 5 x 6 tiles with GROUP_M = 2 leaves a ragged last group."""
    a = torch.randn(70, 40, device=device, dtype=torch.float16)
    b = torch.randn(40, 90, device=device, dtype=torch.float16)
    c = gemm.gemm(a, b, block_m=16, block_n=16, block_k=16, group_m=2)
    torch.testing.assert_close(c, gemm.reference(a, b), **tol(torch.float16))


def test_gemm_strided_b_and_fp32_output(device, tol):
    a = torch.randn(5, 48, device=device, dtype=torch.float16)
    b = torch.randn(40, 48, device=device, dtype=torch.float16).t()   # column-major B
    c = gemm.gemm(a, b, out_dtype=torch.float32)
    assert c.dtype == torch.float32
    torch.testing.assert_close(c, gemm.reference(a, b, torch.float32), atol=1e-3, rtol=1e-3)


@pytest.mark.skipif(not gemm.fp8_supported(), reason="fp8 GEMM only on a Hopper GPU")
def test_gemm_fp8_on_hopper():
    a = torch.randn(64, 128, device="cuda").to(torch.float8_e4m3fn)
    b = torch.randn(128, 64, device="cuda").to(torch.float8_e4m3fn)
    torch.testing.assert_close(gemm.gemm(a, b), gemm.reference(a, b), atol=5e-2, rtol=5e-2)


def test_fp8_refused_without_hopper():
    if gemm.fp8_supported() or not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("Hopper present or no fp8 dtype")
    a = torch.zeros(4, 4).to(torch.float8_e4m3fn)
    with pytest.raises(NotImplementedError):
        gemm.gemm(a, a)


def test_flops_and_bytes_by_hand():
    # M=2, N=3, K=4: 2*2*3*4 = 48 flops; fp16 A (8) + B (12) + C (6) elements = 26 * 2 bytes.
    assert gemm.flops(2, 3, 4) == 48
    assert gemm.bytes(2, 3, 4) == 52
    assert gemm.bytes(2, 3, 4, in_bytes=1, out_bytes=2) == 8 + 12 + 12
