"""Sigma: load, validate and compile rules to matchers; correlation; hunts."""
