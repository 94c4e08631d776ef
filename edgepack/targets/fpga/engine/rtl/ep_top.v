// Board top for the int8 engine (iCE40 UP5K on iCEBreaker / UPduino; also the xc7 top): the edgepack
// serial protocol (ep_link) on the UART, with the engine behind it (ep_engine_port). The same host client
// as for the Cortex-M firmware talks to it; the `sim` board runs this module under Verilator with the
// UART bridged to a pty (edgepack/targets/fpga/simboard/). Parameters: edgepack/targets/fpga/link.py.
module ep_top #(
    parameter PROGRAM_HEX = "program.hex",
    parameter PROG_DEPTH = 512,
    parameter IDENTITY_HEX = "identity.hex",
    parameter ID_BYTES = 64,
    parameter CLKS_PER_BIT = 104,
    parameter TIMEOUT_CLKS = 1200000,
    parameter MAX_PAYLOAD = 256,
    parameter IN_BYTES = 16,
    parameter OUT_BYTES = 16,
    parameter W_BYTES = 4,
    parameter IN_WORDS = 1, IN_C = 1, IN_WPP = 1, IN_BASE = 0,
    parameter OUT_WORDS = 1, OUT_C = 1, OUT_WPP = 1, OUT_BASE = 0
) (
    input  wire clk,
    input  wire uart_rx,
    output wire uart_tx,
    output wire led_busy
);
    reg [3:0] por = 4'd0;
    wire rst = !por[3];
    always @(posedge clk) if (!por[3]) por <= por + 4'd1;

    wire       rx_v, tx_send, tx_busy;
    wire [7:0] rx_d, tx_d;
    ep_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) urx (.clk(clk), .rx(uart_rx), .valid(rx_v), .data(rx_d));
    ep_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) utx (.clk(clk), .send(tx_send), .data(tx_d), .busy(tx_busy),
                                                 .tx(uart_tx));
    wire        m_start, m_done, m_out_we, w_we;
    wire [15:0] m_in_addr, m_out_addr;
    wire [7:0]  m_in_data, m_out_data;
    wire [13:0] w_addr;
    wire [31:0] w_wdata, w_rdata;
    ep_link #(.IN_BYTES(IN_BYTES), .OUT_BYTES(OUT_BYTES), .W_BYTES(W_BYTES), .MAX_PAYLOAD(MAX_PAYLOAD),
              .ID_BYTES(ID_BYTES), .IDENTITY_HEX(IDENTITY_HEX), .TIMEOUT_CLKS(TIMEOUT_CLKS)) link (
        .clk(clk), .rst(rst), .rx_valid(rx_v), .rx_data(rx_d), .tx_send(tx_send), .tx_data(tx_d),
        .tx_busy(tx_busy), .busy(led_busy), .m_start(m_start), .m_done(m_done), .m_in_addr(m_in_addr),
        .m_in_data(m_in_data), .m_out_we(m_out_we), .m_out_addr(m_out_addr), .m_out_data(m_out_data),
        .w_we(w_we), .w_addr(w_addr), .w_wdata(w_wdata), .w_rdata(w_rdata));
    ep_engine_port #(.PROGRAM_HEX(PROGRAM_HEX), .PROG_DEPTH(PROG_DEPTH), .IN_WORDS(IN_WORDS), .IN_C(IN_C),
                     .IN_WPP(IN_WPP), .IN_BASE(IN_BASE), .OUT_WORDS(OUT_WORDS), .OUT_C(OUT_C),
                     .OUT_WPP(OUT_WPP), .OUT_BASE(OUT_BASE)) model (
        .clk(clk), .rst(rst), .start(m_start), .done(m_done), .in_addr(m_in_addr), .in_data(m_in_data),
        .out_we(m_out_we), .out_addr(m_out_addr), .out_data(m_out_data), .w_we(w_we), .w_addr(w_addr),
        .w_wdata(w_wdata), .w_rdata(w_rdata));
endmodule
