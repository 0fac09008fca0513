"""The config: YAML (bounded, safe) -> frozen dataclasses, every message naming its key path."""
