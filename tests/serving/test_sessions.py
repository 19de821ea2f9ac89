"""Multi-turn sessions: growing context, the session's history kept in the prefix cache, affinity
routing, and block accounting of cache entries that extend other entries."""

import pytest

from simulator.serving import pools
from simulator.serving.kv_blocks import BlockPool
from simulator.serving.metrics import requests_frame, summary
from simulator.serving.prefix_cache import PrefixCache
from simulator.serving.replica import Replica
from simulator.serving.scenario import Scenario
from simulator.serving.sessions import SESSION_KEYS, Session, Sessions
from simulator.serving.simulate import run_scenario
from simulator.serving.sources import open_loop_requests


class FixedTurns:
    """A sampler stub: every session has the given later turns."""

    def __init__(self, msgs, outs):
        self.msgs, self.outs = msgs, outs

    def turns(self, k):
        return list(self.msgs), list(self.outs)

    def draw(self, n):
        return [(1000, 100, 0, 300, 0)] * n


def test_each_turn_resends_the_history_and_asks_for_the_previous_context():
    s = Session(7, [1000, 50, 70], [100, 20, 30], prefix_id=0, prefix_len=300)
    a, b, c = (s.next_request(k, float(k)) for k in range(3))
    assert (a.input_len, b.input_len, c.input_len) == (1000, 1000 + 100 + 50, 1150 + 20 + 70)
    assert (a.prefix_id, a.prefix_len) == (0, 300)  # first turn: the class's system prompt
    assert (b.prefix_id, b.prefix_len) == (SESSION_KEYS + 7, 1100) and (c.prefix_id, c.prefix_len) == (SESSION_KEYS + 7, 1170)
    assert [r.keep_id for r in (a, b, c)] == [SESSION_KEYS + 7, SESSION_KEYS + 7, -1]  # the last keeps nothing
    assert [r.turn for r in (a, b, c)] == [0, 1, 2] and s.done


def test_a_rejected_turn_ends_its_session_and_a_closed_loop_user_starts_another():
    feed = Sessions(FixedTurns([10, 10], [5, 5]), think_time_s=2.0, total=100, users=1)
    first = feed.opening(0)[0]
    nxt = feed.after(first, 5.0, 1)
    assert nxt.session == first.session and nxt.turn == 1 and nxt.arrival_s == 7.0
    nxt.rejected = True
    new = feed.after(nxt, 9.0, 2)
    assert new.session != first.session and new.turn == 0 and first.session not in feed.live


def _scenario(n=120, rate=0.5, router="prefix_affinity", replicas=1, cls=None, **dep):
    chat = {"name": "chat", "input_len": {"uniform": [600, 1500]}, "output_len": {"uniform": [50, 300]},
            "prefix_len": 500, "turns": {"uniform": [2, 6]}, "turn_input_len": {"uniform": [20, 400]}, **(cls or {})}
    return Scenario(
        name="s", num_requests=n, seed=3, arrival={"process": "poisson", "rate": rate, "think_time_s": 1.0},
        classes=[chat], deployment={"model": "llama-3.1-8b", "hw": "h100-sxm", "replicas": replicas, "router": router,
                                    **dep})


def test_open_loop_sessions_make_exactly_the_requested_number_of_requests():
    sc = _scenario(n=101)
    first, feed = open_loop_requests(sc)
    assert len(first) + sum(len(s.messages) - 1 for s in feed.live.values()) == 101
    df = requests_frame(run_scenario(sc))
    assert len(df) == 101 and df.finished.all()


def test_a_later_turn_hits_the_whole_blocks_of_the_previous_turns_context():
    df = requests_frame(run_scenario(_scenario()))  # light load: nothing is evicted
    multi = df[df.session >= 0].sort_values(["session", "turn"])
    assert multi.turn.max() >= 3
    for _, s in multi.groupby("session"):
        prev = s.iloc[:-1]
        ctx = prev.input_len.to_numpy() + prev.output_len.to_numpy() - 1  # the last token's KV is never computed
        assert (s.prefix_hit_tokens.to_numpy()[1:] == ctx // 16 * 16).all()
        assert s.prefix_hit_tokens.iloc[0] in (0, 496)  # first turn: the 500-token system prompt, 31 blocks
        # turn n+1 follows turn n's reply by the think time
        finish = prev.arrival_s.to_numpy() + prev.e2e_s.to_numpy()
        assert s.arrival_s.to_numpy()[1:] == pytest.approx(finish + 1.0)


def test_caching_the_history_cuts_the_time_to_first_token_of_later_turns():
    on, off = (requests_frame(run_scenario(_scenario(), prefix_caching=c)) for c in (True, False))
    later = lambda df: df[df.turn > 0]  # noqa: E731
    assert later(on).ttft_s.mean() < 0.7 * later(off).ttft_s.mean()
    assert (later(off).prefix_hit_tokens == 0).all()


def test_affinity_keeps_a_session_on_one_replica_and_round_robin_scatters_it():
    aff = run_scenario(_scenario(n=200, rate=1.0, replicas=3))
    rr = run_scenario(_scenario(n=200, rate=1.0, replicas=3, router="round_robin"))
    a, r = requests_frame(aff), requests_frame(rr)
    assert (a[a.session >= 0].groupby("session").replica.nunique() == 1).all()
    assert (r[r.session >= 0].groupby("session").replica.nunique() > 1).any()
    assert summary(aff)["prompt_cached_fraction"] > summary(rr)["prompt_cached_fraction"]


def test_disaggregated_sessions_reuse_the_prompt_kept_on_the_prefill_replica():
    sc = _scenario(disaggregation={"prefill_replicas": 1, "decode_replicas": 1})
    df = requests_frame(run_scenario(sc))
    multi = df[df.session >= 0].sort_values(["session", "turn"])
    for _, s in multi.groupby("session"):
        prev = s.input_len.to_numpy()[:-1]  # a prefill replica computes the prompt only, never the reply
        assert (s.prefix_hit_tokens.to_numpy()[1:] == prev // 16 * 16).all()


def test_blocks_balance_after_a_run_with_evictions(monkeypatch):
    made = []

    class Spy(Replica):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(pools, "Replica", Spy)
    # long sessions on a small GPU: history entries are evicted and recomputed
    sc = _scenario(n=150, rate=3.0, replicas=2, hw="l40s",
                   cls={"input_len": {"uniform": [8000, 12000]}, "turn_input_len": {"uniform": [2000, 6000]}})
    res = run_scenario(sc)
    s = summary(res)
    assert s["finished"] + s["rejected"] == 150 and res.stop_reason == "idle"
    # at most one miss per session is its system prompt; the rest are evicted histories prefilled again
    assert res.prefix_misses > requests_frame(res).session.nunique()
    for rep in made:
        entries = rep.cache.entries.values()
        assert all(e[1] == 0 for e in entries)  # nothing holds an entry once all requests are done
        assert rep.blocks.free + sum(e[0] for e in entries) == rep.blocks.total
        assert rep.cache.idle_blocks == sum(e[0] for e in entries)


def test_a_session_entry_holds_its_parent_until_it_is_evicted():
    pool = BlockPool(100, block_size=16)
    cache = PrefixCache(pool)
    pool.free -= 10
    assert cache.insert(1, 160) == 10  # a system prompt of 10 blocks, held by the request that made it
    pool.free -= 15  # that request's own blocks: 25 blocks of context in all
    kept = cache.keep(SESSION_KEYS, 24, via=1)  # it finishes; its context's 24 whole blocks stay
    assert kept == 14 and cache.entries[SESSION_KEYS] == [14, 0, 1, 24]
    pool.free += 15 - kept
    assert cache.idle_blocks == 14  # the system prompt is held by the session entry, not idle
    assert cache.acquire(SESSION_KEYS, 400) == 24 * 16  # the next turn gets prompt and history
    cache.release(SESSION_KEYS)
    cache.make_room(pool.free + 20)  # evicts the session entry first, then its parent
    assert list(cache.entries) == [] and pool.free == 100 and cache.idle_blocks == 0


def test_turns_must_be_at_least_one():
    """Refused when the scenario is read, before any request is drawn."""
    import pydantic

    with pytest.raises(pydantic.ValidationError, match=r"classes.0.turns"):
        _scenario(cls={"turns": 0})
