"""The catalog: the SQLite store, the importers and the 0–10 image score."""
