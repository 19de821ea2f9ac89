import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import attention_prefill as ap  # noqa: E402

DTYPES = [torch.float16, torch.float32] + ([torch.bfloat16] if torch.cuda.is_available() else [])


def _qkv(B, H, KVH, q_len, kv_len, D, dtype, device):
    q = torch.randn(B, H, q_len, D, device=device, dtype=dtype)
    k = torch.randn(B, KVH, kv_len, D, device=device, dtype=dtype)
    v = torch.randn(B, KVH, kv_len, D, device=device, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("q_len, kv_len, D", [(16, 16, 32), (20, 48, 32), (33, 33, 24)])
def test_prefill_gqa_matches_reference(q_len, kv_len, D, dtype, device, tol):
    """GQA 4:2; (20, 48) has 28 cached positions before the queries; D = 24 pads to 32."""
    torch.manual_seed(q_len + kv_len)
    q, k, v = _qkv(2, 4, 2, q_len, kv_len, D, dtype, device)
    o = ap.attention_prefill(q, k, v)
    assert o.shape == q.shape and o.dtype == dtype
    torch.testing.assert_close(o, ap.reference(q, k, v), **tol(dtype))


def test_chunked_prefill_equals_whole_prefill(device, tol):
    """Two chunks (24 then 16 tokens) over the growing cache reproduce a 40-token prefill."""
    torch.manual_seed(0)
    q, k, v = _qkv(1, 4, 2, 40, 40, 16, torch.float32, device)
    first = ap.attention_prefill(q[:, :, :24], k[:, :, :24], v[:, :, :24])
    second = ap.attention_prefill(q[:, :, 24:], k, v)
    torch.testing.assert_close(torch.cat([first, second], dim=2), ap.reference(q, k, v), **tol(torch.float32))


def test_flops_and_bytes_by_hand():
    # q_len 2 after 3 cached tokens: the queries see 4 and 5 keys = 9 pairs;
    # 4 * D(8) * B(1) * H(2) * 9 = 576.  Bytes (fp16): Q, O 2*2*2*8 = 64 elems, K, V 2*1*5*8 = 80.
    assert ap.flops(1, 2, 2, 5, 8) == 576
    assert ap.bytes(1, 2, 1, 2, 5, 8) == 2 * (64 + 80)
