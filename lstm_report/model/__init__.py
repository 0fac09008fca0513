"""The frozen data passed between pipeline stages: what was read, what was computed."""
