"""Playbooks: load, validate and run response playbooks; playbooks/library ships them."""
