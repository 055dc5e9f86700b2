"""Image files: open and save faithfully (formats, metadata, 16-bit), atomically; masks."""
