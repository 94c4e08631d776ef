// 8N1 UART receiver and transmitter; CLKS_PER_BIT = clock / baud (104 for 115200 baud at 12 MHz).
module ep_uart_rx #(parameter CLKS_PER_BIT = 104) (
    input  wire       clk,
    input  wire       rx,
    output reg        valid,
    output reg  [7:0] data
);
    reg [1:0]  sync = 2'b11;
    reg [15:0] count = 16'd0;
    reg [3:0]  bitn = 4'd0;
    reg        active = 1'b0;
    always @(posedge clk) begin
        sync <= {sync[0], rx};
        valid <= 1'b0;
        if (!active) begin
            if (!sync[1]) begin active <= 1'b1; count <= CLKS_PER_BIT / 2; bitn <= 4'd0; end
        end else if (count != 16'd0) count <= count - 16'd1;
        else begin
            count <= CLKS_PER_BIT - 1;
            bitn <= bitn + 4'd1;
            if (bitn == 4'd0) begin
                if (sync[1]) active <= 1'b0;  // a glitch, not a start bit
            end else if (bitn <= 4'd8) data <= {sync[1], data[7:1]};
            else begin active <= 1'b0; valid <= sync[1]; end  // stop bit must be 1
        end
    end
endmodule

module ep_uart_tx #(parameter CLKS_PER_BIT = 104) (
    input  wire       clk,
    input  wire       send,
    input  wire [7:0] data,
    output wire       busy,
    output reg        tx = 1'b1
);
    reg [9:0]  shift = 10'h3FF;
    reg [3:0]  left = 4'd0;
    reg [15:0] count = 16'd0;
    assign busy = (left != 4'd0) || (count != 16'd0);  // through the whole stop bit, not only its start
    always @(posedge clk) begin
        if (!busy) begin
            if (send) begin shift <= {1'b1, data, 1'b0}; left <= 4'd10; count <= 16'd0; end
        end else if (count != 16'd0) count <= count - 16'd1;
        else begin
            tx <= shift[0]; shift <= {1'b1, shift[9:1]}; left <= left - 4'd1; count <= CLKS_PER_BIT - 1;
        end
    end
endmodule
