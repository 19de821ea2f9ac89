from simulator.serving.events import EventLoop


def test_events_run_in_time_then_priority_then_insertion_order():
    loop, seen = EventLoop(), []
    loop.at(2.0, lambda: seen.append("c"))
    loop.at(1.0, lambda: seen.append("b"), priority=1)
    loop.at(1.0, lambda: seen.append("a"), priority=0)
    loop.at(1.0, lambda: seen.append("a2"), priority=0)
    assert loop.run() == "idle"
    assert seen == ["a", "a2", "b", "c"] and loop.now == 2.0


def test_actions_can_schedule_more_events():
    loop, seen = EventLoop(), []

    def tick(n):
        seen.append((loop.now, n))
        if n < 3:
            loop.after(0.5, lambda: tick(n + 1))

    loop.at(0.0, lambda: tick(0))
    loop.run()
    assert seen == [(0.0, 0), (0.5, 1), (1.0, 2), (1.5, 3)]


def test_runs_are_bounded():
    loop = EventLoop(max_events=100)

    def forever():
        loop.after(1.0, forever)

    loop.at(0.0, forever)
    assert loop.run() == "max_events" and loop.events == 100
    loop2 = EventLoop(max_time_s=10.0)
    loop2.at(0.0, lambda: None)
    loop2.at(11.0, lambda: None)
    assert loop2.run() == "max_time" and loop2.now == 0.0


def test_two_loops_are_independent():
    a, b = EventLoop(), EventLoop()
    a.at(5.0, lambda: None)
    assert b.pending == 0 and a.pending == 1
