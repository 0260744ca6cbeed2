"""Collectors: one module per source, each turning raw records into ECS events."""
