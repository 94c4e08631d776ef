// Testbench for a da4ml design (module ep_mlp_wrapper: clk, model_inp[IN_W], model_out[OUT_W]).
// Each input is held for HOLD clocks (more than the pipeline latency), then the output is written as hex.
`timescale 1ns/1ps
module ep_unrolled_tb;
`include "tb_config.vh"
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg  [IN_W-1:0] inp = {IN_W{1'b0}};
    wire [OUT_W-1:0] out;
    ep_mlp_wrapper dut (.clk(clk), .model_inp(inp), .model_out(out));
    reg [IN_W-1:0] mem [0:N_INPUTS-1];
    integer n, fd;
    initial begin
        $readmemh(INPUTS_HEX, mem);
        fd = $fopen(OUTPUTS_TXT, "w");
        for (n = 0; n < N_INPUTS; n = n + 1) begin
            @(negedge clk);
            inp = mem[n];
            repeat (HOLD) @(negedge clk);
            $fwrite(fd, "%x\n", out);
        end
        $fclose(fd);
        $finish;
    end
endmodule
