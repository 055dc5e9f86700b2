"""Running the network: the DDIM loop (`sampler`), the 512-pixel inpainter, device and
precision choice, and CUDA graphs. Works on model-sized tensors, not on photos."""
