"""Object removal on whole photos: the job and its settings, region planning, cutting and
compositing, the engines (Quick, Moebius), the job runner and batch cleaning."""
