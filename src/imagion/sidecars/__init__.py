"""Sidecar files written beside photos for photo managers to read (XMP)."""
