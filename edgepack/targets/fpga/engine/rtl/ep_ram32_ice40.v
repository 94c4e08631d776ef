// 16K x 32-bit RAM on two iCE40 UP5K single-port RAMs (SB_SPRAM256KA, 16K x 16 each).
// SPRAM has no initial contents: the host (or a boot loader) writes it through the engine's host port.
module ep_ram32 (
    input  wire        clk,
    input  wire [13:0] addr,
    input  wire [31:0] wdata,
    input  wire        we,
    output wire [31:0] rdata
);
    SB_SPRAM256KA lo (
        .ADDRESS(addr), .DATAIN(wdata[15:0]), .MASKWREN(4'b1111), .WREN(we), .CHIPSELECT(1'b1),
        .CLOCK(clk), .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1), .DATAOUT(rdata[15:0]));
    SB_SPRAM256KA hi (
        .ADDRESS(addr), .DATAIN(wdata[31:16]), .MASKWREN(4'b1111), .WREN(we), .CHIPSELECT(1'b1),
        .CLOCK(clk), .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1), .DATAOUT(rdata[31:16]));
endmodule
