// Board top (iCE40 UP5K on iCEBreaker / UPduino; also the xc7 top): the engine behind a byte-level UART bridge.
//
// Bridge commands (host -> board), all multi-byte fields little-endian:
//   'W' a0 a1 d0 d1 d2 d3   write word d to address a (a bit 15 = 1: WMEM, 0: AMEM); no reply
//   'R' a0 a1               reply d0 d1 d2 d3, the word at a
//   'G'                     run the program; reply 'D' c0 c1 c2 c3 (cycles) when done
// This is the debug bridge the host driver uses to load weights, inputs and read outputs; it is not
// the edgepack serial protocol of the MCU firmware (docs/targets/fpga.md).
module ep_top #(
    parameter PROGRAM_HEX = "program.hex",
    parameter PROG_DEPTH = 512,
    parameter CLKS_PER_BIT = 104
) (
    input  wire clk,
    input  wire uart_rx,
    output wire uart_tx,
    output wire led_busy
);
    reg [3:0] por = 4'd0;
    wire rst = !por[3];
    always @(posedge clk) if (!por[3]) por <= por + 4'd1;

    wire       rx_v;
    wire [7:0] rx_d;
    reg        tx_send = 1'b0;
    reg  [7:0] tx_d = 8'd0;
    wire       tx_busy;
    ep_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) urx (.clk(clk), .rx(uart_rx), .valid(rx_v), .data(rx_d));
    ep_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) utx (.clk(clk), .send(tx_send), .data(tx_d), .busy(tx_busy),
                                                 .tx(uart_tx));

    reg        start = 1'b0, we = 1'b0;
    reg [15:0] addr = 16'd0;
    reg [31:0] wdata = 32'd0, reply = 32'd0;
    wire       busy, done;
    wire [31:0] cycles, rdata;
    ep_engine #(.PROGRAM_HEX(PROGRAM_HEX), .PROG_DEPTH(PROG_DEPTH)) engine (
        .clk(clk), .rst(rst), .start(start), .busy(busy), .done(done), .cycles(cycles),
        .host_wmem(addr[15]), .host_we(we), .host_addr(addr[13:0]), .host_wdata(wdata), .host_rdata(rdata));
    assign led_busy = busy;

    localparam C_IDLE = 3'd0, C_ARGS = 3'd1, C_EXEC = 3'd2, C_READ = 3'd3, C_SEND = 3'd4, C_RUN = 3'd5;
    reg [2:0] cs = C_IDLE;
    reg [7:0] cmd = 8'd0;
    reg [2:0] need = 3'd0, got = 3'd0, sendn = 3'd0;
    reg [7:0] args [0:5];
    always @(posedge clk) begin
        start <= 1'b0; we <= 1'b0; tx_send <= 1'b0;
        if (rst) cs <= C_IDLE;
        else case (cs)
        C_IDLE: if (rx_v) begin
            cmd <= rx_d; got <= 3'd0;
            if (rx_d == "W") begin need <= 3'd6; cs <= C_ARGS; end
            else if (rx_d == "R") begin need <= 3'd2; cs <= C_ARGS; end
            else if (rx_d == "G") begin start <= 1'b1; cs <= C_RUN; end
        end
        C_ARGS: if (rx_v) begin
            args[got] <= rx_d; got <= got + 3'd1;
            if (got + 3'd1 == need) cs <= C_EXEC;
        end
        C_EXEC: begin
            addr <= {args[1], args[0]};
            wdata <= {args[5], args[4], args[3], args[2]};
            if (cmd == "W") begin we <= 1'b1; cs <= C_IDLE; end
            else cs <= C_READ;
        end
        C_READ: begin  // the RAM answers one cycle after the address is stable
            if (got == 3'd2) got <= 3'd3;
            else begin reply <= rdata; sendn <= 3'd4; cs <= C_SEND; end
        end
        C_SEND: if (!tx_busy && !tx_send) begin
            if (sendn == 3'd0) cs <= C_IDLE;
            else begin tx_d <= reply[7:0]; reply <= {8'd0, reply[31:8]}; tx_send <= 1'b1; sendn <= sendn - 3'd1; end
        end
        C_RUN: if (done) begin
            tx_d <= "D"; tx_send <= 1'b1; reply <= cycles; sendn <= 3'd4; cs <= C_SEND;
        end
        default: cs <= C_IDLE;
        endcase
    end
endmodule
