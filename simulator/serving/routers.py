"""Routers: which replica a new request goes to. Each entry of ROUTERS makes a fresh router (no
state shared between simulations); a router is called as router(replicas, request, n_routed)."""

from __future__ import annotations


def _least_outstanding(replicas, req, n):
    loads = [r.outstanding_tokens() for r in replicas]
    return replicas[loads.index(min(loads))]  # ties: the first (lowest index)


class PrefixAffinity:
    """Requests sharing a prefix (system prompt, session) go to the replica that served it last, so
    its prefix cache hits, unless that replica is overloaded: bounded-load consistent hashing
    (Mirrokni, Thorup & Zadimoghaddam 2018) with load bound (1 + EPS) x the mean outstanding tokens.
    Requests without a prefix, or over the bound, go to the least outstanding replica."""

    EPS = 0.25

    def __init__(self):
        self.home: dict[int, int] = {}

    def __call__(self, replicas, req, n):
        rep = self._pick(replicas, req, n)
        if req.keep_id >= 0:  # a session's next turn goes where this turn leaves its context
            self.home[req.keep_id] = rep.idx
        elif req.session >= 0:  # its last turn: the session is over
            self.home.pop(req.prefix_id, None)
        return rep

    def _pick(self, replicas, req, n):
        home = self.home.get(req.prefix_id) if req.prefix_id >= 0 else None
        if home is not None:
            loads = [r.outstanding_tokens() for r in replicas]
            if loads[home] <= (1 + self.EPS) * sum(loads) / len(loads) + req.input_len:
                return replicas[home]
        rep = _least_outstanding(replicas, req, n)
        if req.prefix_id >= 0:
            self.home[req.prefix_id] = rep.idx
        return rep


ROUTERS = {
    "round_robin": lambda: (lambda replicas, req, n: replicas[n % len(replicas)]),
    "least_outstanding": lambda: _least_outstanding,
    "prefix_affinity": PrefixAffinity,
}
