// Requantizer, pipelined (8 stages, one value per cycle), bit-exact with edgepack's golden interpreter:
//
//   REQ  (pool = 0): tflite::MultiplyByQuantizedMultiplier with double rounding (fixedpoint.requantize):
//        xs = wrap32(acc << max(shift, 0)); hi = SaturatingRoundingDoublingHighMul(xs, mult);
//        r = RoundingDivideByPOT(hi, max(-shift, 0)); y = clamp(r + out_zp, act_min, act_max)
//        The product is formed in sign-magnitude: for xs < 0, trunc((-u + 1 - 2^30) / 2^31)
//        = -((u + 2^30 - 1) >> 31) with u = |xs| * mult, so one unsigned 32x32 multiplier serves; the
//        rounding divide stays in sign-magnitude too (it rounds half away from zero), so one shifter serves
//        both modes and the signed part is only 11 bits wide.
//   POOL (pool = 1): TFLM average pool's (sum +/- count/2) / count, truncated toward zero:
//        y = clamp(sign * (((|sum| + half) * mult) >> (31 - shift))), mult/shift a reciprocal of count
//        that the program generator proved exact (engine/program.py: pool_reciprocal).
module ep_requant (
    input  wire               clk,
    input  wire               in_valid,
    input  wire [1:0]         in_lane,
    input  wire signed [31:0] acc,
    input  wire [31:0]        mult,
    input  wire signed [7:0]  shift,
    input  wire               pool,
    input  wire [15:0]        half,
    input  wire signed [8:0]  out_zp,
    input  wire signed [8:0]  act_min,
    input  wire signed [8:0]  act_max,
    output reg                out_valid,
    output reg  [1:0]         out_lane,
    output reg  [7:0]         y
);
    // stage 1: left shift (REQ) or |sum| + half (POOL)
    reg        v1, pool1;
    reg [1:0]  l1;
    reg [31:0] m1, xs1;
    reg [4:0]  r1;
    reg        neg1;
    wire [4:0] left = (!pool && !shift[7]) ? shift[4:0] : 5'd0;
    wire [4:0] right = shift[7] ? 5'd0 - shift[4:0] : 5'd0;
    always @(posedge clk) begin
        v1 <= in_valid; l1 <= in_lane; m1 <= mult; r1 <= right; pool1 <= pool;
        if (pool) begin
            neg1 <= (acc <= 0);
            xs1 <= (acc[31] ? -acc : acc) + {16'd0, half};
        end else begin
            xs1 <= acc << left;
            neg1 <= 1'b0;
        end
    end
    // stage 2: magnitude
    reg        v2, pool2, neg2;
    reg [1:0]  l2;
    reg [31:0] m2, mag2;
    reg [4:0]  r2;
    always @(posedge clk) begin
        v2 <= v1; l2 <= l1; m2 <= m1; r2 <= r1; pool2 <= pool1;
        if (pool1) begin
            neg2 <= neg1; mag2 <= xs1;
        end else begin
            neg2 <= xs1[31]; mag2 <= xs1[31] ? -xs1 : xs1;
        end
    end
    // stage 3: unsigned 32x32 product (four SB_MAC16 on the iCE40)
    reg        v3, pool3, neg3;
    reg [1:0]  l3;
    reg [63:0] p3;
    reg [4:0]  r3;
    always @(posedge clk) begin
        v3 <= v2; l3 <= l2; r3 <= r2; pool3 <= pool2; neg3 <= neg2;
        p3 <= mag2 * m2;
    end
    // stage 4: nudge and >> 31
    reg        v4, pool4, neg4;
    reg [1:0]  l4;
    reg [32:0] hm4;
    reg [4:0]  r4;
    wire [63:0] nudge = pool3 ? 64'd0 : (neg3 ? 64'h3FFFFFFF : 64'h40000000);
    wire [63:0] p3n = p3 + nudge;
    always @(posedge clk) begin
        v4 <= v3; l4 <= l3; r4 <= r3; pool4 <= pool3; neg4 <= neg3;
        hm4 <= p3n[63:31];
    end
    // stage 5: RoundingDivideByPOT in sign-magnitude: for e = -shift >= 1 it rounds half away from zero,
    // so |RDBP(hi, e)| = (|hi| + 2^(e-1)) >> e, and the sign is hi's. POOL adds nothing here (its half was
    // added before the multiply).
    reg        v5, pool5, neg5;
    reg [1:0]  l5;
    reg [4:0]  r5;
    reg [33:0] a5;
    wire [33:0] rnd = (pool4 || r4 == 5'd0) ? 34'd0 : (34'd1 << (r4 - 5'd1));
    always @(posedge clk) begin
        v5 <= v4; l5 <= l4; r5 <= r4; pool5 <= pool4;
        neg5 <= neg4 && (pool4 || hm4 != 33'd0);
        a5 <= {1'b0, hm4} + rnd;
    end
    // stage 6: the shift, the magnitude saturated to 10 bits (enough: |out_zp| <= 256 and the clamp is int8)
    reg        v6, neg6;
    reg [1:0]  l6;
    reg [9:0]  q6;
    wire [33:0] sh5 = a5 >> r5;
    always @(posedge clk) begin
        v6 <= v5; l6 <= l5; neg6 <= neg5;
        q6 <= (sh5 > 34'd1023) ? 10'd1023 : sh5[9:0];
    end
    // stage 7: the sign
    reg        v7;
    reg [1:0]  l7;
    reg signed [10:0] r7;
    always @(posedge clk) begin
        v7 <= v6; l7 <= l6;
        r7 <= neg6 ? -$signed({1'b0, q6}) : $signed({1'b0, q6});
    end
    // stage 8: output zero point and clamp
    wire signed [11:0] z = r7 + out_zp;
    always @(posedge clk) begin
        out_valid <= v7; out_lane <= l7;
        if (z < act_min) y <= act_min[7:0];
        else if (z > act_max) y <= act_max[7:0];
        else y <= z[7:0];
    end
endmodule
