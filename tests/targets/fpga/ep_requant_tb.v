// Drives ep_requant with vectors from vectors.hex (acc, mult, shift|pool<<8, half) and writes y per vector.
`timescale 1ns/1ps
module ep_requant_tb;
`include "tb_config.vh"
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg v = 1'b0;
    reg [31:0] acc = 0, mult = 0, half = 0, sp = 0;
    wire ov;
    wire [1:0] ol;
    wire [7:0] y;
    ep_requant dut (.clk(clk), .in_valid(v), .in_lane(2'd0), .acc(acc), .mult(mult), .shift(sp[7:0]),
                    .pool(sp[8]), .half(half[15:0]), .out_zp(ZP), .act_min(-9'sd128), .act_max(9'sd127),
                    .out_valid(ov), .out_lane(ol), .y(y));
    reg [31:0] vec [0:4*N-1];
    integer i, fd, got;
    initial begin
        $readmemh(VECTORS_HEX, vec);
        fd = $fopen(OUTPUTS_TXT, "w");
        got = 0;
        for (i = 0; i < N + 12; i = i + 1) begin
            @(negedge clk);
            if (i < N) begin acc = vec[4*i]; mult = vec[4*i+1]; sp = vec[4*i+2]; half = vec[4*i+3]; v = 1'b1; end
            else v = 1'b0;
            if (ov) begin $fwrite(fd, "%02x\n", y); got = got + 1; end
        end
        $fclose(fd);
        $finish;
    end
endmodule
