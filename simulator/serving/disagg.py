"""KV handover from a prefill pool to a decode pool (Splitwise, Patel et al. 2024, arXiv:2311.18677;
DistServe, Zhong et al. 2024, arXiv:2401.09670).

When a prefill replica finishes a prompt (and its first token), the request's KV crosses to the
decode replica the decode router picks. Each transfer holds the sender's and the receiver's link
for bytes / bandwidth (one transfer at a time per link, first come first served: links shared by
many handovers queue). Layer-wise, as Splitwise does, each layer's KV leaves as soon as that layer
is computed, so a transfer may run under the rest of the prefill: it starts no earlier than the
prompt's first step and ends no earlier than one layer's share after the prefill ends. Without
layer-wise sending it starts when the prefill ends."""

from __future__ import annotations

from ..collectives import link_bandwidth
from .events import Backlog, EventLoop
from .kv_transfer import TRANSFER_EFFICIENCY


def handover_bandwidth(cfg, spec, devices: int) -> float:
    """Per-device bytes/s of the handover link: the configured one, else scale-up when both pools
    fit in one scale-up domain, else scale-out."""
    dis = cfg.disaggregation
    if dis.link_bandwidth is not None:
        return dis.link_bandwidth
    return link_bandwidth(spec, devices) * TRANSFER_EFFICIENCY


class Handover:
    def __init__(self, loop: EventLoop, decode, bytes_per_token: float, bandwidth: float, layers: int,
                 layerwise: bool, finish, backlog: Backlog | None = None):
        self.loop, self.decode, self.finish = loop, decode, finish
        self.backlog = Backlog(loop) if backlog is None else backlog  # handovers in flight count as waiting
        self.bytes_per_token, self.bandwidth = bytes_per_token, bandwidth
        self.layers, self.layerwise = layers, layerwise
        self.send_free: dict[int, float] = {}  # link free times, by replica index
        self.recv_free: dict[int, float] = {}
        self.routed = 0
        self.bytes_moved = 0.0

    def __call__(self, req) -> None:
        """A prefill replica is done with `req`: finish it, or send its KV to a decode replica."""
        if req.rejected or req.output_len <= 1:
            self.finish(req)
            return
        req.finish_s = None  # the prefill replica's finish is not the request's
        now = self.loop.now
        dest = self.decode.route(self.decode.replicas, req, self.routed)
        self.routed += 1
        size = self.bytes_per_token * (req.input_len + 1)
        self.bytes_moved += size
        total = size / self.bandwidth
        ready = req.scheduled_s if self.layerwise else now
        start = max(ready, self.send_free.get(req.replica, 0.0), self.recv_free.get(dest.idx, 0.0))
        end = max(start + total, now + total / self.layers) if self.layerwise else start + total
        self.send_free[req.replica] = self.recv_free[dest.idx] = end
        self.backlog.arrive()
        self.loop.at(end, lambda: self._deliver(req, dest))

    def _deliver(self, req, dest) -> None:
        req.handover_s = self.loop.now
        dest.receive(req)  # waits there (or is rejected) before it leaves the link: the backlog never dips to 0
        self.backlog.leave()
