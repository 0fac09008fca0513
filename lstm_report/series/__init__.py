"""Checkpoint series: one work unit per checkpoint, and their cache by content hash."""
