"""Report data -> outputs: the HTML page, the JSON contract, Markdown, JUnit, CI alerts."""
