// A da4ml network (module ep_mlp_wrapper: clk, model_inp, model_out) behind ep_link's model port.
// On `start` the N_IN int8 input bytes are shifted into the network's input register (element i at
// bits 8i+7..8i), the pipeline is given LATENCY + 2 clocks, and the N_OUT output elements (OUT_BITS
// wide, sign- or zero-extended to bytes) are written to the link's output buffer.
// Cycles from start to done: 2 * N_IN + LATENCY + 2 + N_OUT + 3 (link.py: port_cycles).
module ep_unrolled_port #(
    parameter N_IN = 16,
    parameter N_OUT = 4,
    parameter OUT_BITS = 8,
    parameter OUT_SIGNED = 1,
    parameter LATENCY = 4
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        start,
    output reg         done,
    output wire [15:0] in_addr,
    input  wire [7:0]  in_data,
    output reg         out_we,
    output reg  [15:0] out_addr,
    output reg  [7:0]  out_data,
    input  wire        w_we,
    input  wire [13:0] w_addr,
    input  wire [31:0] w_wdata,
    output wire [31:0] w_rdata
);
    localparam P_IDLE = 3'd0, P_IADDR = 3'd1, P_IBYTE = 3'd2, P_WAIT = 3'd3, P_CAPTURE = 3'd4, P_OUT = 3'd5;
    reg [2:0] ps;
    reg [15:0] n;
    reg [8*N_IN-1:0] inp = {8*N_IN{1'b0}};
    reg [OUT_BITS*N_OUT-1:0] outr;
    wire [OUT_BITS*N_OUT-1:0] out;
    ep_mlp_wrapper net (.clk(clk), .model_inp(inp), .model_out(out));
    assign in_addr = n;
    assign w_rdata = 32'd0;  // the weights are constants in the logic: no weight memory

    wire [OUT_BITS-1:0] e = outr[OUT_BITS-1:0];
    wire [31:0] ez = {{(32 - OUT_BITS){1'b0}}, e};
    wire [31:0] ext = (OUT_SIGNED != 0 && e[OUT_BITS-1]) ? (ez | ~((32'd1 << OUT_BITS) - 32'd1)) : ez;

    always @(posedge clk) begin
        done <= 1'b0; out_we <= 1'b0;
        if (rst) ps <= P_IDLE;
        else case (ps)
        P_IDLE: if (start) begin ps <= P_IADDR; n <= 16'd0; end
        P_IADDR: ps <= P_IBYTE;
        P_IBYTE: begin
            inp <= {in_data, inp[8*N_IN-1:8]};
            n <= n + 16'd1;
            if (n + 16'd1 == N_IN) begin ps <= P_WAIT; n <= 16'd0; end
            else ps <= P_IADDR;
        end
        P_WAIT: begin
            n <= n + 16'd1;
            if (n + 16'd1 == LATENCY + 2) ps <= P_CAPTURE;
        end
        P_CAPTURE: begin outr <= out; n <= 16'd0; ps <= P_OUT; end
        P_OUT: begin
            out_we <= 1'b1; out_addr <= n; out_data <= ext[7:0];
            outr <= outr >> OUT_BITS;
            n <= n + 16'd1;
            if (n + 16'd1 == N_OUT) begin done <= 1'b1; ps <= P_IDLE; end
        end
        default: ps <= P_IDLE;
        endcase
    end
endmodule
