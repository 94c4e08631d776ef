// The int8 engine behind ep_link's model port: on `start` it copies the link's input bytes into the
// engine's activation memory (NHWC, channels padded to words of 4 with zeros), runs the layer program,
// copies the engine's output tensor (padding dropped) into the link's output buffer and pulses `done`.
// While idle, the link's weight port reaches the engine's weight memory through the engine's host port.
// The cycles from start to done are fixed by the tensor sizes and the program (link.py: port_cycles).
module ep_engine_port #(
    parameter PROGRAM_HEX = "program.hex",
    parameter PROG_DEPTH = 512,
    parameter IN_WORDS = 1,   // AMEM words of the input tensor (pixels x channels padded to 4, / 4)
    parameter IN_C = 1,       // input channels
    parameter IN_WPP = 1,     // words per input pixel
    parameter IN_BASE = 0,    // AMEM word address of the input tensor
    parameter OUT_WORDS = 1,
    parameter OUT_C = 1,
    parameter OUT_WPP = 1,
    parameter OUT_BASE = 0
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
    localparam P_IDLE = 3'd0, P_IADDR = 3'd1, P_IBYTE = 3'd2, P_START = 3'd3, P_RUN = 3'd4, P_OADDR = 3'd5,
               P_OBYTE = 3'd6;
    reg [2:0] ps;
    reg [1:0] b;             // byte within the word
    reg [15:0] wi;           // words left to copy
    reg [15:0] c;            // channel within the pixel, 0 .. WPP*4-1
    reg [15:0] ri;           // byte index in the link's buffer
    reg [13:0] aw;           // AMEM word address
    reg [31:0] word;
    reg        a_we;
    reg        e_start;
    wire       e_busy, e_done;
    wire [31:0] e_cycles, e_rdata;
    wire       idle = (ps == P_IDLE);

    ep_engine #(.PROGRAM_HEX(PROGRAM_HEX), .PROG_DEPTH(PROG_DEPTH)) engine (
        .clk(clk), .rst(rst), .start(e_start), .busy(e_busy), .done(e_done), .cycles(e_cycles),
        .host_wmem(idle), .host_we(idle ? w_we : a_we), .host_addr(idle ? w_addr : aw),
        .host_wdata(idle ? w_wdata : word), .host_rdata(e_rdata));
    assign w_rdata = e_rdata;
    assign in_addr = ri;

    always @(posedge clk) begin
        done <= 1'b0; a_we <= 1'b0; e_start <= 1'b0; out_we <= 1'b0;
        if (a_we) aw <= aw + 14'd1;  // a word was written at aw this cycle
        if (rst) ps <= P_IDLE;
        else case (ps)
        P_IDLE: if (start) begin
            ps <= P_IADDR; b <= 2'd0; wi <= IN_WORDS; c <= 16'd0; ri <= 16'd0; aw <= IN_BASE;
        end
        // input: the byte at ri arrives one cycle after its address; a full word is written the cycle after
        P_IADDR: ps <= P_IBYTE;
        P_IBYTE: begin
            word <= {(c < IN_C) ? in_data : 8'd0, word[31:8]};
            if (c < IN_C) ri <= ri + 16'd1;
            c <= (c == IN_WPP * 4 - 1) ? 16'd0 : c + 16'd1;
            b <= b + 2'd1;
            if (b == 2'd3) begin a_we <= 1'b1; wi <= wi - 16'd1; end
            ps <= (b == 2'd3 && wi == 16'd1) ? P_START : P_IADDR;
        end
        P_START: begin e_start <= 1'b1; ps <= P_RUN; end  // the last input word is written here
        P_RUN: if (e_done) begin
            ps <= P_OADDR; b <= 2'd0; wi <= OUT_WORDS; c <= 16'd0; ri <= 16'd0; aw <= OUT_BASE;
        end
        // output: one word read at aw, then its 4 bytes, the padding channels skipped
        P_OADDR: ps <= P_OBYTE;
        P_OBYTE: begin
            if (b == 2'd0) word <= e_rdata;
            out_data <= (b == 2'd0) ? e_rdata[7:0] : (b == 2'd1) ? word[15:8] : (b == 2'd2) ? word[23:16]
                        : word[31:24];
            out_addr <= ri;
            if (c < OUT_C) begin out_we <= 1'b1; ri <= ri + 16'd1; end
            c <= (c == OUT_WPP * 4 - 1) ? 16'd0 : c + 16'd1;
            b <= b + 2'd1;
            if (b == 2'd3) begin
                aw <= aw + 14'd1; wi <= wi - 16'd1;
                if (wi == 16'd1) begin done <= 1'b1; ps <= P_IDLE; end
                else ps <= P_OADDR;
            end
        end
        default: ps <= P_IDLE;
        endcase
    end
endmodule
