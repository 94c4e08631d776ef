/*
 * gemmlowp fixed-point transcendental functions on int32 raw values, copied from
 * edgepack/ir/reference/fixedpoint.py (which follows gemmlowp/fixedpoint/fixedpoint.h).
 * Used by ep_softmax_s8, ep_logistic_s8 and ep_tanh_s8.
 */
#include "ep_common.h"

/* exp on [-1/4, 0) for Q0.31 raws: Taylor series around -1/8. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    int32_t x = a + (1 << 28);
    int32_t x2 = ep_srdhm(x, x);
    int32_t x3 = ep_srdhm(x2, x);
    int32_t x4 = ep_srdhm(x2, x2);
    int32_t x4_over_4 = ep_rounding_divide_by_pot(x4, 2);
    int32_t poly = ep_rounding_divide_by_pot(ep_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + ep_srdhm(constant_term, x + poly);
}

int32_t ep_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t barrel_exponent[7] = {-2, -1, 0, 1, 2, 3, 4};
    static const int32_t barrel_multiplier[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                 39332535, 720401, 242};
    int32_t fractional_bits = 31 - integer_bits;
    int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    int32_t mask = one_quarter - 1;
    int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        ep_saturating_left_shift(a_mod_quarter_minus_one_quarter, integer_bits));
    int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int i;
    for (i = 0; i < 7; ++i) {
        if (integer_bits > barrel_exponent[i]) {
            int32_t bit = (int32_t)1 << (fractional_bits + barrel_exponent[i]);
            if (remainder & bit) {
                result = ep_srdhm(result, barrel_multiplier[i]);
            }
        }
    }
    if (integer_bits > 5) {
        int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp::RoundingHalfSum for int32 raws. */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    int64_t sum = (int64_t)a + (int64_t)b;
    sum += sum >= 0 ? 1 : -1;
    return (int32_t)(sum / 2);
}

int32_t ep_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    int32_t x = 1515870810 + ep_srdhm(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        int32_t one_minus = (1 << 29) - ep_srdhm(half_denominator, x);
        x = x + ep_saturating_left_shift(ep_srdhm(x, one_minus), 2);
    }
    return ep_saturating_left_shift(x, 1);
}

int32_t ep_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    int32_t x = 1515870810 + ep_srdhm(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        int32_t one_minus = (1 << 29) - ep_srdhm(half_denominator, x);
        x = x + ep_saturating_left_shift(ep_srdhm(x, one_minus), 2);
    }
    return ep_saturating_left_shift(x - (1 << 29), 2);
}

int32_t ep_logistic_q(int32_t a, int32_t integer_bits)
{
    int32_t abs_a;
    int32_t result_pos;
    if (a == 0) {
        return 1 << 30;
    }
    abs_a = a > 0 ? a : -a;
    result_pos = ep_one_over_one_plus_x_for_x_in_0_1(ep_exp_on_negative_values(-abs_a, integer_bits));
    return a > 0 ? result_pos : INT32_MAX - result_pos;
}

int32_t ep_tanh_q(int32_t a, int32_t integer_bits)
{
    int32_t n;
    int32_t t;
    if (a == 0) {
        return 0;
    }
    n = a < 0 ? a : -a;
    /* ExactMulByPot<1>: the same raw value read with one more integer bit. */
    t = ep_one_minus_x_over_one_plus_x_for_x_in_0_1(ep_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? -t : t;
}

static int32_t count_leading_zeros_u32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

int32_t ep_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    int32_t headroom_plus_one = count_leading_zeros_u32((uint32_t)x);
    uint32_t shifted = headroom_plus_one >= 32 ? 0u : ((uint32_t)x << headroom_plus_one);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return ep_one_over_one_plus_x_for_x_in_0_1((int32_t)(shifted - 0x80000000u));
}
