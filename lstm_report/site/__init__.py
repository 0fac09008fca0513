"""A static site from a folder of reports: the page check and the index."""
