// edgepack int8 engine: 4 multiply-accumulate lanes, a sequencer driven by a layer program, requantizer.
//
// Generated data, not logic, drives it: program.hex (FIELDS words per layer, see engine/program.py:
// Field) and the weight image the host writes into WMEM. Per layer the sequencer loops
//   for g in groups (4 output channels): fetch 9 parameter words (4 bias, 4 multiplier, 4 shifts)
//     for oy, ox in output pixels:
//       for ky, kx, ic in taps: one activation read + one weight word read per cycle, 4 MACs
//       requantize the 4 accumulators (ep_requant), write them as one AMEM word
// CONV: the lanes share the activation byte (p + ic) and read their own weights; DW/POOL: lane l reads
// byte l of the word at (p + 4g). Taps outside the input (padding) contribute (x - in_zp) = 0.
// Memories: WMEM and AMEM, 16K x 32 each (ep_ram32: two SPRAMs each on the iCE40 UP5K). While the
// engine is idle the host port reads and writes them (host_wmem selects WMEM).
module ep_engine #(
    parameter PROGRAM_HEX = "program.hex",
    parameter PROG_DEPTH = 512
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        start,
    output wire        busy,
    output reg         done,
    output reg  [31:0] cycles,
    input  wire        host_wmem,
    input  wire        host_we,
    input  wire [13:0] host_addr,
    input  wire [31:0] host_wdata,
    output wire [31:0] host_rdata
);
    localparam FIELDS = 32, PARAM_WORDS = 9;
    localparam MODE_CONV = 4'd0, MODE_DW = 4'd1, MODE_POOL = 4'd2, MODE_END = 4'd15;
    localparam S_IDLE = 4'd0, S_LOAD = 4'd1, S_GROUP = 4'd2, S_PARAM = 4'd3, S_PIX = 4'd4, S_MAC = 4'd5,
               S_DRAIN = 4'd6, S_REQ = 4'd7, S_WAIT = 4'd8, S_WRITE = 4'd9, S_NEXT = 4'd10;

    reg [3:0] state;
    assign busy = (state != S_IDLE);

    // ---- program ROM ----
    reg [31:0] prog_mem [0:PROG_DEPTH-1];
    initial $readmemh(PROGRAM_HEX, prog_mem);
    reg [15:0] layer_base;
    reg [5:0]  fi, fi_d;          // field index requested / arriving (the ROM answers one cycle later)
    reg        fi_v;
    reg [31:0] prog_q;
    always @(posedge clk) prog_q <= prog_mem[layer_base + {10'd0, fi}];

    // ---- layer fields ----
    reg [3:0]  mode;
    reg [7:0]  oh, ow, groups, kh, kw, ih, iw, pad_t, pad_l, sh, sw;
    reg [11:0] icn;
    reg [15:0] step_kx, step_ky, step_ox, step_oy, half;
    reg signed [19:0] in_origin;
    reg [13:0] out_base, w_base, w_glen;
    reg signed [8:0] in_zp, out_zp, act_min, act_max;
    reg unit_w;

    // ---- memories ----
    // Addresses are combinational from the loop counters: the RAM samples them at the clock edge that
    // also advances the counters, and its data is in the pipeline register one stage later.
    wire [13:0] wm_addr, am_addr;
    wire        am_we = (state == S_WRITE);
    wire [31:0] wm_q, am_q;
    reg  [31:0] out_word;
    ep_ram32 wmem (.clk(clk), .addr(busy ? wm_addr : host_addr), .wdata(host_wdata),
                   .we(!busy && host_we && host_wmem), .rdata(wm_q));
    ep_ram32 amem (.clk(clk), .addr(busy ? am_addr : host_addr), .wdata(busy ? out_word : host_wdata),
                   .we(busy ? am_we : (host_we && !host_wmem)), .rdata(am_q));
    assign host_rdata = host_wmem ? wm_q : am_q;

    // ---- loop state ----
    reg [7:0]  g, oy, ox, ky, kx;
    reg [11:0] ic;
    reg [13:0] wgrp, wptr, out_ptr;
    reg signed [9:0] iy0, ix0, iy_c, ix_c;
    reg signed [19:0] p_row, p_pix, p_ky, p_kx;
    reg [3:0]  pi, pi_d;
    reg        pi_v;

    // per-lane parameters
    reg signed [31:0] bias0, bias1, bias2, bias3;
    reg [31:0] mult0, mult1, mult2, mult3;
    reg [31:0] shifts;

    // ---- tap issue (combinational) ----
    wire conv = (mode == MODE_CONV);
    wire signed [19:0] tap_addr = p_kx + (conv ? {8'd0, ic} : {10'd0, g, 2'b00});
    wire tap_valid = (iy_c >= 0) && (iy_c < $signed({2'b0, ih})) && (ix_c >= 0) && (ix_c < $signed({2'b0, iw}));
    wire last_ic = (ic + 12'd1 >= icn);
    wire last_kx = (kx + 8'd1 >= kw);
    wire last_ky = (ky + 8'd1 >= kh);
    wire last_tap = last_ic && last_kx && last_ky;
    wire issuing = (state == S_MAC);
    assign wm_addr = (state == S_PARAM) ? wgrp + {10'd0, pi} : wptr;
    assign am_addr = (state == S_WRITE) ? out_ptr : tap_addr[15:2];

    // ---- MAC pipeline ----
    reg t1_v, t1_valid, t1_first, t1_last;
    reg [1:0] t1_bsel;
    reg first_tap;
    reg t2_v, t2_first, t2_last, t3_v, t3_first, t3_last, acc_done;
    reg signed [9:0] xm0, xm1, xm2, xm3;
    reg signed [7:0] wl0, wl1, wl2, wl3;
    reg signed [17:0] pr0, pr1, pr2, pr3;
    reg signed [31:0] acc0, acc1, acc2, acc3;
    wire [7:0] xsel = (t1_bsel == 2'd0) ? am_q[7:0] : (t1_bsel == 2'd1) ? am_q[15:8] :
                      (t1_bsel == 2'd2) ? am_q[23:16] : am_q[31:24];
    wire [7:0] xb0 = conv ? xsel : am_q[7:0];
    wire [7:0] xb1 = conv ? xsel : am_q[15:8];
    wire [7:0] xb2 = conv ? xsel : am_q[23:16];
    wire [7:0] xb3 = conv ? xsel : am_q[31:24];
    always @(posedge clk) begin
        t1_v <= issuing; t1_valid <= tap_valid; t1_first <= first_tap; t1_last <= last_tap;
        t1_bsel <= tap_addr[1:0];
        t2_v <= t1_v; t2_first <= t1_first; t2_last <= t1_last;
        xm0 <= t1_valid ? $signed({{2{xb0[7]}}, xb0}) - in_zp : 10'sd0;
        xm1 <= t1_valid ? $signed({{2{xb1[7]}}, xb1}) - in_zp : 10'sd0;
        xm2 <= t1_valid ? $signed({{2{xb2[7]}}, xb2}) - in_zp : 10'sd0;
        xm3 <= t1_valid ? $signed({{2{xb3[7]}}, xb3}) - in_zp : 10'sd0;
        wl0 <= unit_w ? 8'sd1 : $signed(wm_q[7:0]);
        wl1 <= unit_w ? 8'sd1 : $signed(wm_q[15:8]);
        wl2 <= unit_w ? 8'sd1 : $signed(wm_q[23:16]);
        wl3 <= unit_w ? 8'sd1 : $signed(wm_q[31:24]);
        t3_v <= t2_v; t3_first <= t2_first; t3_last <= t2_last;
        pr0 <= xm0 * wl0; pr1 <= xm1 * wl1; pr2 <= xm2 * wl2; pr3 <= xm3 * wl3;
        if (t3_v) begin
            acc0 <= (t3_first ? bias0 : acc0) + pr0;
            acc1 <= (t3_first ? bias1 : acc1) + pr1;
            acc2 <= (t3_first ? bias2 : acc2) + pr2;
            acc3 <= (t3_first ? bias3 : acc3) + pr3;
        end
        acc_done <= t3_v && t3_last;
    end

    // ---- requantizer ----
    reg        rq_v;
    reg [1:0]  rq_lane;
    wire       rq_ov;
    wire [1:0] rq_ol;
    wire [7:0] rq_y;
    wire signed [31:0] rq_acc = (rq_lane == 2'd0) ? acc0 : (rq_lane == 2'd1) ? acc1 : (rq_lane == 2'd2) ? acc2 : acc3;
    wire [31:0] rq_mult = (rq_lane == 2'd0) ? mult0 : (rq_lane == 2'd1) ? mult1 : (rq_lane == 2'd2) ? mult2 : mult3;
    wire [7:0] rq_shift = (rq_lane == 2'd0) ? shifts[7:0] : (rq_lane == 2'd1) ? shifts[15:8] :
                          (rq_lane == 2'd2) ? shifts[23:16] : shifts[31:24];
    ep_requant rq (.clk(clk), .in_valid(rq_v), .in_lane(rq_lane), .acc(rq_acc), .mult(rq_mult),
                   .shift(rq_shift), .pool(mode == MODE_POOL), .half(half), .out_zp(out_zp),
                   .act_min(act_min), .act_max(act_max), .out_valid(rq_ov), .out_lane(rq_ol), .y(rq_y));
    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE; done <= 1'b0; cycles <= 32'd0; rq_v <= 1'b0; fi_v <= 1'b0; fi <= 6'd0;
            layer_base <= 16'd0;
            pi_v <= 1'b0;
        end else begin
            done <= 1'b0;
            if (busy) cycles <= cycles + 32'd1;
            case (state)
            S_IDLE: if (start) begin
                cycles <= 32'd0; layer_base <= 16'd0; fi <= 6'd0; fi_v <= 1'b0;
                state <= S_LOAD;
            end
            S_LOAD: begin
                // request field fi; field fi_d arrives from the ROM one cycle later
                fi_v <= (fi < FIELDS);
                fi_d <= fi;
                if (fi < FIELDS) fi <= fi + 6'd1;
                if (fi_v) begin
                    case (fi_d)
                    6'd0: mode <= prog_q[3:0];
                    6'd1: oh <= prog_q[7:0];
                    6'd2: ow <= prog_q[7:0];
                    6'd3: groups <= prog_q[7:0];
                    6'd4: kh <= prog_q[7:0];
                    6'd5: kw <= prog_q[7:0];
                    6'd6: icn <= prog_q[11:0];
                    6'd7: ih <= prog_q[7:0];
                    6'd8: iw <= prog_q[7:0];
                    6'd9: pad_t <= prog_q[7:0];
                    6'd10: pad_l <= prog_q[7:0];
                    6'd11: step_kx <= prog_q[15:0];
                    6'd12: step_ky <= prog_q[15:0];
                    6'd13: step_ox <= prog_q[15:0];
                    6'd14: step_oy <= prog_q[15:0];
                    6'd15: sh <= prog_q[7:0];
                    6'd16: sw <= prog_q[7:0];
                    6'd17: in_origin <= prog_q[19:0];
                    6'd18: out_base <= prog_q[13:0];
                    6'd19: w_base <= prog_q[13:0];
                    6'd20: w_glen <= prog_q[13:0];
                    6'd21: in_zp <= prog_q[8:0];
                    6'd22: out_zp <= prog_q[8:0];
                    6'd23: act_min <= prog_q[8:0];
                    6'd24: act_max <= prog_q[8:0];
                    6'd25: half <= prog_q[15:0];
                    6'd26: unit_w <= prog_q[0];
                    default: ;
                    endcase
                    if (fi_d == FIELDS - 1) begin
                        fi_v <= 1'b0;
                        g <= 8'd0;
                        wgrp <= w_base;
                        state <= (mode == MODE_END) ? S_IDLE : S_GROUP;
                        if (mode == MODE_END) done <= 1'b1;
                    end
                end
            end
            S_GROUP: begin
                pi <= 4'd0; pi_v <= 1'b0; state <= S_PARAM;
            end
            S_PARAM: begin
                pi_v <= (pi < PARAM_WORDS);
                pi_d <= pi;
                if (pi < PARAM_WORDS) pi <= pi + 4'd1;
                if (pi_v) begin
                    case (pi_d)
                    4'd0: bias0 <= wm_q;
                    4'd1: bias1 <= wm_q;
                    4'd2: bias2 <= wm_q;
                    4'd3: bias3 <= wm_q;
                    4'd4: mult0 <= wm_q;
                    4'd5: mult1 <= wm_q;
                    4'd6: mult2 <= wm_q;
                    4'd7: mult3 <= wm_q;
                    default: shifts <= wm_q;
                    endcase
                    if (pi_d == PARAM_WORDS - 1) begin
                        pi_v <= 1'b0;
                        oy <= 8'd0; ox <= 8'd0;
                        iy0 <= -$signed({2'b0, pad_t}); ix0 <= -$signed({2'b0, pad_l});
                        p_row <= in_origin; p_pix <= in_origin;
                        out_ptr <= out_base + {6'd0, g};
                        state <= S_PIX;
                    end
                end
            end
            S_PIX: begin
                ky <= 8'd0; kx <= 8'd0; ic <= 12'd0;
                iy_c <= iy0; ix_c <= ix0; p_ky <= p_pix; p_kx <= p_pix;
                wptr <= wgrp + PARAM_WORDS;
                first_tap <= 1'b1;
                state <= S_MAC;
            end
            S_MAC: begin
                first_tap <= 1'b0;
                if (!unit_w) wptr <= wptr + 14'd1;
                if (!last_ic) ic <= ic + 12'd1;
                else begin
                    ic <= 12'd0;
                    if (!last_kx) begin
                        kx <= kx + 8'd1; ix_c <= ix_c + 10'sd1; p_kx <= p_kx + $signed({4'd0, step_kx});
                    end else begin
                        kx <= 8'd0; ix_c <= ix0;
                        if (!last_ky) begin
                            ky <= ky + 8'd1; iy_c <= iy_c + 10'sd1;
                            p_ky <= p_ky + $signed({4'd0, step_ky}); p_kx <= p_ky + $signed({4'd0, step_ky});
                        end else state <= S_DRAIN;
                    end
                end
            end
            S_DRAIN: if (acc_done) begin
                rq_v <= 1'b1; rq_lane <= 2'd0; state <= S_REQ;
            end
            S_REQ: begin
                if (rq_lane == 2'd3) begin rq_v <= 1'b0; state <= S_WAIT; end
                else rq_lane <= rq_lane + 2'd1;
            end
            S_WAIT: if (rq_ov && rq_ol == 2'd3) state <= S_WRITE;
            S_WRITE: begin
                out_ptr <= out_ptr + {6'd0, groups};
                state <= S_NEXT;
            end
            S_NEXT: begin
                state <= S_PIX;
                if (ox + 8'd1 < ow) begin
                    ox <= ox + 8'd1; ix0 <= ix0 + $signed({2'b0, sw}); p_pix <= p_pix + $signed({4'd0, step_ox});
                end else begin
                    ox <= 8'd0; ix0 <= -$signed({2'b0, pad_l});
                    if (oy + 8'd1 < oh) begin
                        oy <= oy + 8'd1; iy0 <= iy0 + $signed({2'b0, sh});
                        p_row <= p_row + $signed({4'd0, step_oy}); p_pix <= p_row + $signed({4'd0, step_oy});
                    end else if (g + 8'd1 < groups) begin
                        g <= g + 8'd1; wgrp <= wgrp + w_glen; state <= S_GROUP;
                    end else begin
                        layer_base <= layer_base + FIELDS; fi <= 6'd0;
                        fi_v <= 1'b0; state <= S_LOAD;
                    end
                end
            end
            default: state <= S_IDLE;
            endcase
        end
    end

    // collect the requantized lanes into one word
    always @(posedge clk) begin
        if (rq_ov) begin
            case (rq_ol)
            2'd0: out_word[7:0] <= rq_y;
            2'd1: out_word[15:8] <= rq_y;
            2'd2: out_word[23:16] <= rq_y;
            default: out_word[31:24] <= rq_y;
            endcase
        end
    end
endmodule
