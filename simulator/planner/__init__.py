"""Capacity planning: choose hardware, layouts and replica counts that serve a demand within SLOs."""
