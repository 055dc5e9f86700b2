"""Model weights: the zoo of fine-tunes, the local store (install, verify, remove), Hub
downloads and the file helpers they share."""
