"""Detection: Sigma (streaming, correlation, hunts) and YARA, and alert building."""
