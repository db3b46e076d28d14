"""The ingest service's pure domain: category catalogue and input validation. No I/O beyond
reading the catalogue file, no HTTP, no SQL."""
