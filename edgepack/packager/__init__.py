"""The export side: import -> quantize -> target.compile -> bundle. Heavy tools are imported lazily."""
