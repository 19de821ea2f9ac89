"""Discrete-event serving simulator: arrivals, iteration-level batching, KV paging, routing."""
