"""Reports: the manager's periodic summary and the national incident report, as HTML and PDF."""
