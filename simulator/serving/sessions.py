"""Multi-turn sessions and closed-loop users.

A session (a chat conversation, an agent loop) is a run of turns by one user: turn n's prompt is
everything before it - the earlier turns' prompts and replies - plus a new message, so the context
grows turn by turn. A turn is sent a think time after the previous reply. When a turn finishes, its
replica keeps its whole context in the prefix cache under the session's key (prefix_cache.keep),
and the next turn asks for that key: on the same replica (prefix_affinity routing) it prefills only
its new message, elsewhere or after an eviction it prefills everything.

Open loop: sessions start at the arrival process's times (the rate counts new sessions; for
single-turn classes, requests), and a run of N requests takes sessions in arrival order until their
turns make N. Closed loop: each user sends a session's turns one after another, then starts the
next session, until N requests were sent."""

from __future__ import annotations

from dataclasses import dataclass

from .traffic import Request

SESSION_KEYS = 1 << 40  # prefix ids of session contexts start here (class prefixes use the class index)


@dataclass(slots=True)
class Session:
    sid: int
    messages: list[int]  # new prompt tokens of each turn (the first: its whole prompt)
    outputs: list[int]  # reply tokens of each turn
    prefix_id: int  # the class's shared prefix (system prompt) of the first turn, -1 if none
    prefix_len: int
    user: int = -1
    turn: int = 0  # turns sent
    context: int = 0  # tokens before the next turn's message: earlier prompts and replies

    @property
    def key(self) -> int:
        return SESSION_KEYS + self.sid

    @property
    def done(self) -> bool:
        return self.turn >= len(self.messages)

    def next_request(self, rid: int, t: float) -> Request:
        n, first = self.turn, self.turn == 0
        i, o = self.context + self.messages[n], self.outputs[n]
        req = Request(rid, t, i, o, prefix_id=self.prefix_id if first else self.key,
                      prefix_len=self.prefix_len if first else self.context, user=self.user, session=self.sid,
                      turn=n, keep_id=self.key if n + 1 < len(self.messages) else -1)
        self.turn, self.context = n + 1, i + o
        return req


class Sessions:
    """Issues the turns that follow finished requests: the session's next turn, or (closed loop,
    `users` > 0) the user's next session; at most `total` requests in all. `sampler` is a
    sources.ClassSampler: draw(n) gives first turns, turns(k) a class-k session's later turns."""

    def __init__(self, sampler, think_time_s: float, total: int, users: int = 0):
        self.sampler, self.think_time_s, self.total, self.users = sampler, think_time_s, total, users
        self.live: dict[int, Session] = {}  # sessions with turns still to send
        self._sid = 0

    def first_turn(self, draw: tuple, rid: int, t: float, user: int = -1, cap: int | None = None) -> Request:
        """A new session's first request from a sampler draw (input, output, prefix id, prefix
        length, class): a single request when its class has one turn; at most `cap` turns."""
        i, o, p, pl, k = draw
        msgs, outs = self.sampler.turns(k)
        if cap is not None:
            msgs, outs = msgs[:cap - 1], outs[:cap - 1]
        if not msgs:
            return Request(rid, t, i, o, prefix_id=p, prefix_len=pl, user=user)
        s = Session(self._sid, [i, *msgs], [o, *outs], p, pl, user)
        self._sid += 1
        self.live[s.sid] = s
        return s.next_request(rid, t)

    def opening(self, rid: int) -> list[Request]:
        """Closed loop: every user's first request, at time 0."""
        users = min(self.users, self.total)
        return [self.first_turn(d, rid + u, 0.0, u) for u, d in enumerate(self.sampler.draw(users))] if users else []

    def after(self, req: Request, now: float, rid: int) -> Request | None:
        """The request that follows `req` (finished or rejected), sent a think time from now, or None."""
        s = self.live.get(req.session)
        t = now + self.think_time_s
        if s is not None:
            if not s.done and not req.rejected:  # a rejected turn ends its session: the next is longer
                return s.next_request(rid, t)
            del self.live[s.sid]
        if self.users:
            return self.first_turn(self.sampler.draw(1)[0], rid, t, req.user)
        return None


def open_loop_sessions(times, draws: list[tuple], sampler, think_time_s: float, n: int) -> tuple[list[Request], Sessions]:
    """First turns of the sessions starting at `times` (one per draw), in order until their turns
    make `n` requests (the last session cut short), and the Sessions that sends their later turns."""
    feed, first, count = Sessions(sampler, think_time_s, n), [], 0
    for t, d in zip(times, draws):
        if count >= n:
            break
        req = feed.first_turn(d, len(first), float(t), cap=n - count)
        first.append(req)
        s = feed.live.get(req.session)
        count += 1 if s is None else len(s.messages)
    return first, feed
