// 16K x 32-bit synchronous single-port RAM, one-cycle read latency: the behaviour of two SB_SPRAM256KA
// side by side (ep_ram32_ice40.v). Used for simulation and for the xc7 flow (infers block RAM).
module ep_ram32 (
    input  wire        clk,
    input  wire [13:0] addr,
    input  wire [31:0] wdata,
    input  wire        we,
    output reg  [31:0] rdata
);
    reg [31:0] mem [0:16383];
    always @(posedge clk) begin
        if (we) mem[addr] <= wdata;
        else rdata <= mem[addr];
    end
endmodule
