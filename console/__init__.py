"""The Flask console: triage, cases, rules, playbooks, reports, administration, API."""
