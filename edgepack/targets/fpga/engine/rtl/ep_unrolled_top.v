// Board top for an unrolled (da4ml) network: the edgepack serial protocol (ep_link) on the UART, the
// network behind it (ep_unrolled_port). Its weights are constants in the logic, so W_BYTES is 0.
module ep_unrolled_top #(
    parameter IDENTITY_HEX = "identity.hex",
    parameter ID_BYTES = 64,
    parameter CLKS_PER_BIT = 104,
    parameter TIMEOUT_CLKS = 1200000,
    parameter MAX_PAYLOAD = 256,
    parameter N_IN = 16,
    parameter N_OUT = 4,
    parameter OUT_BITS = 8,
    parameter OUT_SIGNED = 1,
    parameter LATENCY = 4
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
    ep_link #(.IN_BYTES(N_IN), .OUT_BYTES(N_OUT), .W_BYTES(0), .MAX_PAYLOAD(MAX_PAYLOAD), .ID_BYTES(ID_BYTES),
              .IDENTITY_HEX(IDENTITY_HEX), .TIMEOUT_CLKS(TIMEOUT_CLKS)) link (
        .clk(clk), .rst(rst), .rx_valid(rx_v), .rx_data(rx_d), .tx_send(tx_send), .tx_data(tx_d),
        .tx_busy(tx_busy), .busy(led_busy), .m_start(m_start), .m_done(m_done), .m_in_addr(m_in_addr),
        .m_in_data(m_in_data), .m_out_we(m_out_we), .m_out_addr(m_out_addr), .m_out_data(m_out_data),
        .w_we(w_we), .w_addr(w_addr), .w_wdata(w_wdata), .w_rdata(w_rdata));
    ep_unrolled_port #(.N_IN(N_IN), .N_OUT(N_OUT), .OUT_BITS(OUT_BITS), .OUT_SIGNED(OUT_SIGNED),
                       .LATENCY(LATENCY)) model (
        .clk(clk), .rst(rst), .start(m_start), .done(m_done), .in_addr(m_in_addr), .in_data(m_in_data),
        .out_we(m_out_we), .out_addr(m_out_addr), .out_data(m_out_data), .w_we(w_we), .w_addr(w_addr),
        .w_wdata(w_wdata), .w_rdata(w_rdata));
endmodule
