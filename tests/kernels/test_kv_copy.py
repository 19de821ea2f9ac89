import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import kv_copy  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_copy_blocks_with_shuffled_indices(dtype, device):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(12, 4, 2, 12, generator=g).to(device=device, dtype=dtype)    # 96 elems/block
    dst = torch.randn(9, 4, 2, 12, generator=g).to(device=device, dtype=dtype)
    si = torch.randperm(12, generator=g)[:6]
    di = torch.randperm(9, generator=g)[:6]
    expected = kv_copy.reference(src, dst, si, di)
    out = kv_copy.copy_blocks(src, dst, si, di, block=64)          # 2 chunks/block, the last ragged
    assert out is dst
    assert torch.equal(dst, expected)


def test_copy_between_devices_goes_through_torch(device):
    """Host pool -> device pool (on a CPU-only machine: CPU -> CPU via the same staging path)."""
    src = torch.arange(5 * 8, dtype=torch.float16).view(5, 8)
    dst = torch.zeros(4, 8, dtype=torch.float16, device=device)
    kv_copy.copy_blocks(src, dst, [4, 0], [1, 3])
    assert torch.equal(dst.cpu()[1], src[4]) and torch.equal(dst.cpu()[3], src[0])
    assert not dst.cpu()[[0, 2]].any()


def test_flops_and_bytes_by_hand():
    # 3 blocks of 16*2*8 = 256 fp16 elements, read and written: 3 * 256 * 2 * 2.
    assert kv_copy.flops(3, 256) == 0
    assert kv_copy.bytes(3, 256) == 3072
