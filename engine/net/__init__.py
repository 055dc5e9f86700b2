"""The Moebius network itself: config, UNet (`model`), checkpoint loading, batch-norm
folding (`fold`), the reference weight fill and the VAE. Knows nothing of photos or jobs."""
