"""Print top-1 accuracy of `edgepack run` outputs against the labels of the example's test set.

Usage: python score.py PRED.npz TEST.npz
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Compare argmax of the (only) output in PRED.npz with `y` in TEST.npz."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pred", help="outputs written by 'edgepack run -o'")
    parser.add_argument("test", help="the example's test.npz (with labels y)")
    args = parser.parse_args()
    with np.load(args.pred) as pred, np.load(args.test) as test:
        out = pred[pred.files[0]]
        y = test["y"]
    top1 = out.reshape(len(out), -1).argmax(axis=1)
    print(f"bundle top-1 accuracy on {len(y)} test images: {np.mean(top1 == y):.2%}")


if __name__ == "__main__":
    main()
