"""The thin runtime: load a bundle and run it. Imports numpy and the chosen backend library only.

Usage::

    import edgepack.runtime as rt
    sess = rt.load("kws.edgepack")            # the bundle's default backend, or the first available
    out = sess.run(x)                          # {output name: array}
"""

from edgepack.runtime.bundle import Bundle
from edgepack.runtime.session import Session, load
from edgepack.runtime.tensors import TensorInfo
from edgepack.runtime.verify import VerifyReport, verify

__all__ = ["Bundle", "Session", "TensorInfo", "VerifyReport", "load", "verify"]
