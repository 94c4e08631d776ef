"""The export side: import -> quantize -> target.compile -> bundle. Heavy tools are imported lazily.

`from_jax`, `from_keras` and `from_torch` convert framework models to a .tflite/.onnx file that
`edgepack.packager.pipeline.package` (or `edgepack package`) takes.
"""

from edgepack.frontends import from_jax, from_keras, from_torch

__all__ = ["from_jax", "from_keras", "from_torch"]
