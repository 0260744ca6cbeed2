"""govsoc demo: a provincial data centre under attack, end to end."""
