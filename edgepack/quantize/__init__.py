"""Post-training quantization to mixed bit-widths: Graph (float) -> Graph (integer, TFLite/TFLM conventions).

Modules: `scheme` (conventions and QuantConfig), `calibrate` (ranges and layer statistics), `rounding`
(RTN, scale search, GPTQ), `quantizer` (`quantize_graph`), `evaluate` (run on real data, quality),
`sensitivity` (per-layer), `allocate` (bit-widths under a budget, Pareto front), `report`.

Usage: `qgraph = quantize_graph(graph, {"input_1": x_calib}, QuantConfig(layer_bits={"conv": (4, 8)}))`.
"""

from edgepack.errors import QuantizationError
from edgepack.quantize.allocate import Allocation, Budget, Point, allocate
from edgepack.quantize.calibrate import Calibration, calibrate
from edgepack.quantize.quantizer import quantize_graph, weight_bytes
from edgepack.quantize.scheme import (
    ALLOWED_EDGETPU,
    ALLOWED_LITERT,
    ALLOWED_MCU,
    QuantConfig,
)
from edgepack.quantize.sensitivity import Sensitivity, measure_sensitivity

__all__ = [
    "ALLOWED_EDGETPU", "ALLOWED_LITERT", "ALLOWED_MCU", "Allocation", "Budget", "Calibration", "Point",
    "QuantConfig", "QuantizationError", "Sensitivity", "allocate", "calibrate", "measure_sensitivity",
    "quantize_graph", "weight_bytes",
]
