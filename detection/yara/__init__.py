"""YARA: compile rule sets and scan files, trees and carved payloads."""
