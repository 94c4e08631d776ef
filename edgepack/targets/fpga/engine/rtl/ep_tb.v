// Testbench for ep_engine: writes the weight image through the host port, then for each input writes it
// into AMEM, starts the engine, waits for done and reads the output words back. tb_config.vh (written by
// edgepack/targets/fpga/sim.py) gives the sizes and file names. Output file: per input one line
// "cycles N" followed by OUT_WORDS lines of 8 hex digits.
`timescale 1ns/1ps
module ep_tb;
`include "tb_config.vh"
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1, start = 1'b0, host_wmem = 1'b0, host_we = 1'b0;
    reg [13:0] host_addr = 14'd0;
    reg [31:0] host_wdata = 32'd0;
    wire busy, done;
    wire [31:0] cycles, host_rdata;
    ep_engine #(.PROGRAM_HEX(PROGRAM_HEX), .PROG_DEPTH(PROG_DEPTH)) dut (
        .clk(clk), .rst(rst), .start(start), .busy(busy), .done(done), .cycles(cycles),
        .host_wmem(host_wmem), .host_we(host_we), .host_addr(host_addr), .host_wdata(host_wdata),
        .host_rdata(host_rdata));
    reg [31:0] wimg [0:W_WORDS-1];
    reg [31:0] inimg [0:N_INPUTS*IN_WORDS-1];
    integer i, n, fd;
    // The host side changes its signals on the falling edge only, so nothing races the rising edge.
    initial begin
        $readmemh(WEIGHTS_HEX, wimg);
        $readmemh(INPUTS_HEX, inimg);
        fd = $fopen(OUTPUTS_TXT, "w");
        repeat (2) @(negedge clk);
        rst = 1'b0;
        host_wmem = 1'b1;
        for (i = 0; i < W_WORDS; i = i + 1) begin
            host_addr = i[13:0]; host_wdata = wimg[i]; host_we = 1'b1;
            @(negedge clk);
        end
        host_we = 1'b0;
        host_wmem = 1'b0;
        for (n = 0; n < N_INPUTS; n = n + 1) begin
            for (i = 0; i < IN_WORDS; i = i + 1) begin
                host_addr = IN_BASE + i[13:0]; host_wdata = inimg[n * IN_WORDS + i]; host_we = 1'b1;
                @(negedge clk);
            end
            host_we = 1'b0;
            start = 1'b1;
            @(negedge clk);
            start = 1'b0;
            while (!done) @(negedge clk);
            $fwrite(fd, "cycles %0d\n", cycles);
            for (i = 0; i < OUT_WORDS; i = i + 1) begin
                host_addr = OUT_BASE + i[13:0];
                @(negedge clk);
                $fwrite(fd, "%08x\n", host_rdata);
            end
        end
        $fclose(fd);
        $finish;
    end
endmodule
