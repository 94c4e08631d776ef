"""edgepack: quantize, compile and bundle trained models for edge targets, and run the bundles."""

__version__ = "0.1.0"
