"""Files to cleaned documents and chunks: every format, OCR and reading order, text repair,
article splitting, chunking (docs/architecture.md)."""
