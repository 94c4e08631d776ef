"""edgepack's int8 FPGA engine: hand-written Verilog in rtl/ and its layer-program generator (program.py)."""
