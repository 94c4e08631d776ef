// Board top for an unrolled (da4ml) design: inputs shift in serially, outputs are captured and shift out,
// so a network with hundreds of I/O bits fits a 48-pin package. sin/sclk-free: one bit per clock while
// `shift_in` is high; `capture` latches the network's output into the output shift register.
module ep_unrolled_top #(
    parameter IN_W = 128,
    parameter OUT_W = 32
) (
    input  wire clk,
    input  wire shift_in,
    input  wire sin,
    input  wire capture,
    output wire sout
);
    reg [IN_W-1:0] inp = {IN_W{1'b0}};
    reg [OUT_W-1:0] outr = {OUT_W{1'b0}};
    wire [OUT_W-1:0] out;
    ep_mlp_wrapper net (.clk(clk), .model_inp(inp), .model_out(out));
    always @(posedge clk) begin
        if (shift_in) inp <= {inp[IN_W-2:0], sin};
        if (capture) outr <= out;
        else outr <= {outr[OUT_W-2:0], 1'b0};
    end
    assign sout = outr[OUT_W-1];
endmodule
