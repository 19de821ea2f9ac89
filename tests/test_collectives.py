"""Collective times on real topologies against hand arithmetic (alpha-beta model)."""

import pytest

from simulator.calibration import CollectiveCal
from simulator.catalog import load_hardware
from simulator.collectives import collective_seconds, domain_size, link_bandwidth

CAL = CollectiveCal(efficiency=0.5, latency=10e-6, step_latency=1e-6)
H100 = load_hardware("h100-sxm")  # NVLink 450 GB/s per direction, 8 per domain; NIC 50 GB/s


def test_ring_inside_the_domain():
    # 8 devices, 64 MB: 2 * 7/8 * 64e6 / (0.5 * 450e9) = 497.8 us; + 10 us + 14 steps x 1 us
    t = collective_seconds("all_reduce", 8, 64e6, H100, CAL)
    assert t == pytest.approx(10e-6 + 14e-6 + 2 * 7 / 8 * 64e6 / 225e9)


def test_small_messages_take_the_one_shot_all_reduce():
    # 8 devices, 64 KB: ring 10 + 14 + 0.498 us = 24.5 us; one-shot 10 + 1 + 7 * 64e3 / 225e9 = 13.0 us
    t = collective_seconds("all_reduce", 8, 64e3, H100, CAL)
    assert t == pytest.approx(10e-6 + 1e-6 + 7 * 64e3 / 225e9)


def test_a_group_larger_than_the_domain_is_hierarchical():
    # 16 devices = 2 domains of 8, 64 MB. Inside: reduce-scatter and all-gather, each
    # 10 + 7 us + 7/8 * 64e6 / 225e9; across: all-reduce of 8 MB over 2 NICs (25 GB/s achieved):
    # ring 10 + 2 us + 2 * 1/2 * 8e6 / 25e9, tree 10 + 2 us + 2 * 8e6 / 25e9 -> ring
    inner = 2 * (10e-6 + 7e-6 + 7 / 8 * 64e6 / 225e9)
    across = 10e-6 + 2e-6 + 8e6 / 25e9
    assert collective_seconds("all_reduce", 16, 64e6, H100, CAL) == pytest.approx(inner + across)
    assert domain_size(H100) == 8 and link_bandwidth(H100, 16) == 50e9


def test_all_to_all_across_domains_is_bound_by_the_nics():
    # 16 devices, 32 MB sent per device: 1/2 of it crosses to the other domain over a 25 GB/s NIC
    # (10 + 1 + 16e6 / 25e9 us) while 7/16 of it moves inside (10 + 7 + 7/8 * 16e6 / 225e9 us)
    t = collective_seconds("all_to_all", 16, 32e6, H100, CAL)
    assert t == pytest.approx(10e-6 + 1e-6 + 16e6 / 25e9)


def test_a_mesh_gives_a_small_group_only_its_peer_links():
    mi = load_hardware("mi300x")  # 64 GB/s per peer pair, 448 GB/s to all 7 peers
    assert link_bandwidth(mi, 2) == 64e9 and link_bandwidth(mi, 4) == 192e9 and link_bandwidth(mi, 8) == 448e9
    # 2-device all-reduce of 1 GB: 1e9 / (0.5 * 64e9) either way; one-shot takes 1 step, ring 2
    assert collective_seconds("all_reduce", 2, 1e9, mi, CAL) == pytest.approx(1e9 / 32e9 + 11e-6)


def test_pcie_cards_exchange_through_the_host():
    l40s = load_hardware("l40s")
    assert l40s.links.scaleup is None
    bw = l40s.links.host.bandwidth_per_dir
    assert link_bandwidth(l40s, 4) == bw
    # ring all-gather of 40 MB over 4: 3/4 * 40e6 / (0.5 bw) + 10 + 3 us
    assert collective_seconds("all_gather", 4, 40e6, l40s, CAL) == pytest.approx(13e-6 + 0.75 * 40e6 / (0.5 * bw))


def test_nothing_to_move_costs_nothing():
    assert collective_seconds("all_reduce", 1, 1e9, H100, CAL) == 0.0
    assert collective_seconds("all_reduce", 8, 0.0, H100, CAL) == 0.0
