"""Photo formats beyond Pillow's own (HEIC/HEIF, AVIF, camera RAW) and colour to sRGB."""
