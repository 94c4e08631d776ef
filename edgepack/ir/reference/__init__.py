"""The golden reference interpreter (numpy): float32 and TFLM-exact integer execution.

Every backend, target and device is checked against it. Usage: `run(graph, {"input": x})`.
"""

from edgepack.ir.reference.interpreter import KERNELS, Interpreter, prepare_all, run

__all__ = ["KERNELS", "Interpreter", "prepare_all", "run"]
