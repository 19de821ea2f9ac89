import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import attention_decode as ad  # noqa: E402

DTYPES = [torch.float16, torch.float32] + ([torch.bfloat16] if torch.cuda.is_available() else [])


def _paged(lens, block_size, H, KVH, D, dtype, device, seed=0):
    """A shuffled pool: each sequence's pages are scattered, plus spare pages nobody uses."""
    g = torch.Generator().manual_seed(seed)
    B = len(lens)
    max_blocks = max(-(-n // block_size) for n in lens) + 1
    pool = B * max_blocks + 3
    table = torch.randperm(pool, generator=g)[:B * max_blocks].view(B, max_blocks).to(torch.int32)
    k = torch.randn(pool, block_size, KVH, D, generator=g).to(device=device, dtype=dtype)
    v = torch.randn(pool, block_size, KVH, D, generator=g).to(device=device, dtype=dtype)
    q = torch.randn(B, H, D, generator=g).to(device=device, dtype=dtype)
    return q, k, v, table.to(device), torch.tensor(lens, dtype=torch.int32, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_size, lens, splits", [(4, [5, 17, 30], 3), (8, [1, 9, 40], 2), (8, [13, 3], 1)])
def test_paged_decode_matches_reference(block_size, lens, splits, dtype, device, tol):
    """GQA 4:2; with 3 splits the 5-token sequence leaves splits empty (lse = -inf)."""
    q, k, v, table, cl = _paged(lens, block_size, 4, 2, 32, dtype, device)
    o = ad.attention_decode(q, k, v, table, cl, num_splits=splits)
    assert o.shape == q.shape and o.dtype == dtype
    torch.testing.assert_close(o, ad.reference(q, k, v, table, cl), **tol(dtype))


def test_split_count_does_not_change_the_answer(device):
    q, k, v, table, cl = _paged([37, 22], 4, 8, 2, 16, torch.float32, device, seed=1)   # GQA 8:2
    one = ad.attention_decode(q, k, v, table, cl, num_splits=1)
    four = ad.attention_decode(q, k, v, table, cl, num_splits=4)
    torch.testing.assert_close(one, four, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(four, ad.reference(q, k, v, table, cl), atol=1e-4, rtol=1e-4)


def test_flops_and_bytes_by_hand():
    # H=4, KVH=2, D=8, contexts 3 and 5 (8 tokens): flops 4*8*4*8 = 1024;
    # bytes fp16: q and o 2*4*2 rows, K and V 2*2*8 rows, of 8 elements: (16 + 32) * 8 * 2.
    assert ad.flops(4, 8, [3, 5]) == 1024
    assert ad.bytes(4, 2, 8, [3, 5]) == (16 + 32) * 8 * 2
