"""Detection content shipped with govsoc: rules/sigma and rules/yara (no code)."""
