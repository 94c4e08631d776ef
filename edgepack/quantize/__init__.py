"""Post-training quantization (mixed bit-widths); arrives with the quantizer issue."""
