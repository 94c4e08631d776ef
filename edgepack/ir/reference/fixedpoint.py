"""Fixed-point arithmetic of TensorFlow Lite Micro, vectorized over int64 numpy arrays.

Every integer kernel of the golden interpreter requantizes through these functions; the C kernel
library copies them name for name (`ep_requantize`, ...). They reproduce, bit for bit:

- `quantize_multiplier`: tflite::QuantizeMultiplier (frexp, round half away from zero, 31-bit significand).
- `srdhm`: gemmlowp::SaturatingRoundingDoublingHighMul.
- `rounding_divide_by_pot`: gemmlowp::RoundingDivideByPOT (round half away from zero).
- `requantize`: tflite::MultiplyByQuantizedMultiplier in its default double-rounding form
  (TFLITE_SINGLE_ROUNDING unset, as in the tflite-micro builds we verify against):
  RoundingDivideByPOT(SRDHM(x << left_shift, multiplier), right_shift).
- `exp_on_negative_values`, `one_over_one_plus_x_for_x_in_0_1`, `logistic`, `tanh`: gemmlowp's
  fixed-point transcendental functions on int32 raw values, for int8 SOFTMAX, LOGISTIC and TANH.

Inputs are int64 arrays holding int32 values; results are int64 arrays holding int32 values.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """C's std::round / TfLiteRound for one value."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def round_half_away_array(x: np.ndarray) -> np.ndarray:
    """Elementwise std::round, in the dtype of `x` (float32 stays float32 like roundf)."""
    return np.sign(x) * np.floor(np.abs(x) + x.dtype.type(0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: real ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`quantize_multiplier` for each element; returns (multipliers, shifts) as int64 arrays."""
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    return (np.array([p[0] for p in pairs], dtype=np.int64).reshape(np.shape(reals)),
            np.array([p[1] for p in pairs], dtype=np.int64).reshape(np.shape(reals)))


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32 (what a C int32 multiply does on every target we build for)."""
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul(a, b) on int32 values."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    # C++ integer division truncates toward zero.
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp::RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_left_shift(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingMultiplyByPOT for a positive exponent."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    out = x << exponent
    out = np.where(x > threshold, np.int64(INT32_MAX), out)
    return np.where(x < -threshold, np.int64(INT32_MIN), out)


def multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for either sign of exponent."""
    if exponent > 0:
        return saturating_left_shift(x, exponent)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return np.asarray(x, dtype=np.int64)


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier(acc, multiplier, shift), double rounding."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(np.asarray(acc, dtype=np.int64) * (np.int64(1) << left))
    return rounding_divide_by_pot(srdhm(shifted, multiplier), right)


def requantize_single_rounding(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier with TFLITE_SINGLE_ROUNDING: (x * m + 2**(30-shift)) >> (31-shift)."""
    total_shift = 31 - np.asarray(shift, dtype=np.int64)
    rounding = np.int64(1) << (total_shift - 1)
    return (np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64) + rounding) >> total_shift


def multiply_by_quantized_multiplier_gt_one(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x << left_shift, multiplier)."""
    return srdhm(wrap_int32(np.asarray(x, dtype=np.int64) << left_shift), multiplier)


# --- gemmlowp fixed-point transcendental functions (FixedPoint<int32, N> represented by raw values) ---

def _mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """FixedPoint product: the raw result is SRDHM of the raws (integer bits add)."""
    return srdhm(a, b)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """gemmlowp exp on [-1/4, 0) for Q0.31 raw values (Taylor series around -1/8)."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = a + (1 << 28)  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + _mul(constant_term, x + poly)


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp::exp_on_negative_values: exp(a) for a <= 0 in Q(integer_bits), result in Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, np.int64(0), result)
    return np.where(a == 0, np.int64(INT32_MAX), result)


def _rounding_half_sum(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp::RoundingHalfSum for int32 raws: (a + b + sign) / 2, truncating."""
    s = np.asarray(a, dtype=np.int64) + b
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s // 2, -((-s) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp::one_over_one_plus_x_for_x_in_0_1: Q0.31 in [0, 1) -> 1/(1+a) in Q0.31 (Newton-Raphson)."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810  # Q2.29
    constant_neg_32_over_17 = -1010580540  # Q2.29
    one_q2 = 1 << 29
    x = constant_48_over_17 + _mul(half_denominator, constant_neg_32_over_17)
    for _ in range(3):
        half_denominator_times_x = _mul(half_denominator, x)
        one_minus = one_q2 - half_denominator_times_x
        x = x + saturating_left_shift(_mul(x, one_minus), 2)
    return saturating_left_shift(x, 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp::one_minus_x_over_one_plus_x_for_x_in_0_1: (1-a)/(1+a) in Q0.31."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + _mul(half_denominator, -1010580540)
    for _ in range(3):
        one_minus = (1 << 29) - _mul(half_denominator, x)
        x = x + saturating_left_shift(_mul(x, one_minus), 2)
    return saturating_left_shift(x - (1 << 29), 2)


def logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic on Q(integer_bits) raws; result in Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, -a)
    result_pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_a, integer_bits))
    result_neg = INT32_MAX - result_pos
    return np.where(a == 0, np.int64(1 << 30), np.where(positive, result_pos, result_neg))


def tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp::tanh on Q(integer_bits) raws; result in Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    negative = a < 0
    n = np.where(negative, a, -a)
    # ExactMulByPot<1>: same raw value read with one more integer bit.
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, np.int64(0), np.where(negative, -t, t))


def count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    """Number of leading zero bits of each value viewed as uint32 (32 for 0)."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    # frexp is exact for integers below 2**53: x = m * 2**e with m in [0.5, 1), so e is the bit length.
    return 32 - np.frexp(x.astype(np.float64))[1].astype(np.int64)


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """tflite::GetReciprocal: (Q0.31 reciprocal of x scaled into [0.5, 1), num_bits_over_unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted), num_bits_over_unit


def requantize_int64(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier(int64 x, ...): the 16x8 path with a 16-bit reduced multiplier."""
    multiplier = np.asarray(multiplier, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, np.int64(0x7FFF))
    total_shift = 15 - np.asarray(shift, dtype=np.int64)
    rounding = np.int64(1) << (total_shift - 1)
    return (np.asarray(acc, dtype=np.int64) * reduced + rounding) >> total_shift
