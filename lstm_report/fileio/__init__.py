"""Files: bounded reads of hostile inputs, atomic writes never over an input, the cache key."""
