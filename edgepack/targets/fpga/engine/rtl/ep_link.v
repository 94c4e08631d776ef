// The edgepack serial protocol, version 1 (docs/serial-protocol.md), in RTL: the same frames, CRC-32,
// status codes and commands as the Cortex-M firmware (ep_protocol.c, main.c), so the same host client
// talks to an FPGA board. Two commands are added for boards whose weight memory has no initial contents
// (the iCE40's SPRAM): LOAD_WEIGHTS (0x07: offset u32 + bytes, both multiples of 4) and COMMIT_WEIGHTS
// (0x08: crc32 u32 of the whole weight image; INVOKE answers NO_WEIGHTS until a commit matched).
//
// The link owns the model's input and output byte buffers. A request is received whole into the payload
// buffer and its CRC checked before anything is written, as the firmware does. INVOKE checks the input
// CRC, pulses m_start and counts clock cycles until m_done: the model (ep_engine_port / ep_unrolled_port)
// reads the input buffer and writes the output buffer in between. IDENTIFY's data comes from IDENTITY_HEX
// (generated per bundle: edgepack/targets/fpga/link.py); its flags byte (offset 21) gets bit 1 once the
// weights are committed, and the committed weight CRC is appended after the five strings.
//
// Written for area (the engine leaves about a quarter of an iCE40 UP5K): the CRC is computed one bit per
// clock (a byte takes 8 clocks; a UART byte takes 10 x CLKS_PER_BIT), a received frame is checked by the
// CRC residue instead of a stored CRC, and every buffer walk steps one address register.
module ep_link #(
    parameter IN_BYTES = 16,          // model input buffer: all inputs concatenated, graph order
    parameter OUT_BYTES = 16,         // model output buffer: what the device returns
    parameter W_BYTES = 0,            // weight image the host loads (0: no weight memory, commands 7/8 unknown)
    parameter MAX_PAYLOAD = 256,      // largest request payload (at most 511)
    parameter ID_BYTES = 64,          // IDENTIFY data bytes in IDENTITY_HEX
    parameter IDENTITY_HEX = "identity.hex",
    parameter TIMEOUT_CLKS = 1200000  // inter-byte timeout: 100 ms at 12 MHz
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        rx_valid,
    input  wire [7:0]  rx_data,
    output reg         tx_send,
    output reg  [7:0]  tx_data,
    input  wire        tx_busy,
    output wire        busy,
    // the model
    output reg         m_start,
    input  wire        m_done,
    input  wire [15:0] m_in_addr,
    output wire [7:0]  m_in_data,
    input  wire        m_out_we,
    input  wire [15:0] m_out_addr,
    input  wire [7:0]  m_out_data,
    // the model's weight memory (word addressed; read data one cycle after the address)
    output reg         w_we,
    output wire [13:0] w_addr,
    output reg  [31:0] w_wdata,
    input  wire [31:0] w_rdata
);
    localparam [7:0] SYNC0 = 8'hA5, SYNC1 = 8'h5A, VERSION = 8'd1;
    localparam [7:0] C_IDENTIFY = 8'h01, C_LOAD_INPUT = 8'h02, C_INVOKE = 8'h03, C_READ_OUTPUT = 8'h04,
                     C_ECHO = 8'h05, C_RESET = 8'h06, C_LOAD_WEIGHTS = 8'h07, C_COMMIT_WEIGHTS = 8'h08;
    localparam [7:0] OK = 8'h00, BAD_CRC = 8'h11, BAD_LENGTH = 8'h12, TIMEOUT = 8'h13, BAD_VERSION = 8'h14,
                     UNKNOWN_CMD = 8'h15, BAD_PAYLOAD = 8'h16, INPUT_RANGE = 8'h21, OUTPUT_RANGE = 8'h22,
                     INPUT_CHECKSUM = 8'h23, NO_OUTPUT = 8'h25, WEIGHTS_RANGE = 8'h26,
                     WEIGHTS_CHECKSUM = 8'h27, NO_WEIGHTS = 8'h28;
    localparam [31:0] RESIDUE = 32'hDEBB20E3;  // CRC register after a message followed by its own CRC
    localparam S_SYNC0 = 4'd0, S_SYNC1 = 4'd1, S_HDR = 4'd2, S_PAY = 4'd3, S_CRC = 4'd4, S_CHECK = 4'd5,
               S_LDIN = 4'd6, S_LDW = 4'd7, S_ICRC = 4'd8, S_RUN = 4'd9, S_OCRC = 4'd10, S_WCRC = 4'd11,
               S_TWAIT = 4'd12, S_TSEND = 4'd13;
    localparam SRC_ID = 2'd0, SRC_RX = 2'd1, SRC_OUT = 2'd2;
    localparam TAIL_NONE = 2'd0, TAIL_VAL = 2'd1, TAIL_WCRC = 2'd2, TAIL_INVOKE = 2'd3;
    localparam P_HDR = 2'd0, P_MEM = 2'd1, P_TAIL = 2'd2, P_CRC = 2'd3;
    localparam [15:0] W_WORDS = W_BYTES / 4;

    reg [3:0] state;
    assign busy = (state != S_SYNC0) || tx_send || tx_busy;  // tx_send: the UART takes the last byte next cycle

    // ---- CRC-32 (reflected 0xEDB88320), one bit a clock: crc_go starts a byte, cbusy while it runs ----
    reg [31:0] crc;
    reg [7:0]  csh, crc_in;
    reg [3:0]  cbits;
    reg        crc_go, crc_clear;
    wire       cbusy = crc_go || (cbits != 4'd0);
    always @(posedge clk) begin
        if (crc_clear) begin crc <= 32'hFFFFFFFF; cbits <= 4'd0; end
        else if (crc_go) begin csh <= crc_in; cbits <= 4'd8; end
        else if (cbits != 4'd0) begin
            crc <= (crc >> 1) ^ ((crc[0] ^ csh[0]) ? 32'hEDB88320 : 32'd0);
            csh <= csh >> 1;
            cbits <= cbits - 4'd1;
        end
    end

    // ---- frame fields and state ----
    reg [2:0]  hcnt, ph;
    reg [7:0]  ver, cmd, seq, hcmd, hseq;
    reg [15:0] len;
    reg        len_ovf;
    reg [31:0] arg0, arg1, val, w_crc, cycles;
    reg [23:0] tocnt;
    reg        out_valid, w_ok;
    reg [15:0] ra, wa;     // read address of every link memory; write address of a copy
    reg [15:0] k;          // payload bytes received

    // ---- memories: payload, input, output buffers (BRAM), identity ROM; all read at `ra` ----
    reg [7:0] rxbuf [0:MAX_PAYLOAD-1];
    reg [7:0] rx_q;
    wire      p_we = (state == S_PAY) && rx_valid;  // the byte is stored at k as it arrives
    always @(posedge clk) begin
        if (p_we) rxbuf[k] <= rx_data;
        rx_q <= rxbuf[ra];
    end
    reg [7:0] inbuf [0:IN_BYTES-1];
    reg [7:0] in_q;
    reg       i_we;
    wire [15:0] in_ra = (state == S_RUN) ? m_in_addr : ra;
    always @(posedge clk) begin
        if (i_we) inbuf[wa] <= rx_q;
        in_q <= inbuf[in_ra];
    end
    assign m_in_data = in_q;
    reg [7:0] outbuf [0:OUT_BYTES-1];
    reg [7:0] out_q;
    always @(posedge clk) begin
        if (m_out_we) outbuf[m_out_addr] <= m_out_data;
        out_q <= outbuf[ra];
    end
    reg [7:0] idrom [0:ID_BYTES-1];
    initial $readmemh(IDENTITY_HEX, idrom);
    reg [7:0] id_q;
    always @(posedge clk) id_q <= idrom[ra];
    reg [13:0] w_waddr;
    assign w_addr = (state == S_WCRC) ? ra[13:0] : w_waddr;

    // ---- range checks: one adder, offset + length against each buffer ----
    wire [15:0] pay_n = len - 16'd4;
    wire [16:0] end_at = {1'b0, arg0[15:0]} + {1'b0, (cmd == C_READ_OUTPUT) ? arg1[15:0] : pay_n};
    wire        arg0_big = |arg0[31:16];

    // ---- the response: phases header (10 bytes), memory part, tail, CRC (4) ----
    reg [7:0]  t_status;
    reg [1:0]  t_src, t_tail, tp;
    reg [8:0]  t_alen, tc;
    wire [4:0] tail_len = (t_tail == TAIL_NONE) ? 5'd0 : (t_tail == TAIL_INVOKE) ? 5'd16 : 5'd4;
    wire [9:0] t_len = 10'd1 + {1'b0, t_alen} + {5'd0, tail_len};
    wire [31:0] tail_word = (t_tail == TAIL_WCRC) ? w_crc : (t_tail == TAIL_VAL) ? val :
                            (tc[3:2] == 2'd1) ? cycles : (tc[3:2] == 2'd3) ? val : 32'd0;
    wire [31:0] crc_out = ~crc;
    reg [7:0] t_byte;
    always @(*) begin
        case (tp)
            P_HDR: case (tc[3:0])
                4'd0: t_byte = SYNC0;
                4'd1: t_byte = SYNC1;
                4'd2: t_byte = VERSION;
                4'd3: t_byte = cmd;
                4'd4: t_byte = seq;
                4'd5: t_byte = t_len[7:0];
                4'd6: t_byte = {6'd0, t_len[9:8]};
                4'd9: t_byte = t_status;
                default: t_byte = 8'd0;
            endcase
            P_MEM: t_byte = (t_src == SRC_RX) ? rx_q : (t_src == SRC_OUT) ? out_q
                            : id_q | ((ra == 16'd21) ? {6'd0, w_ok, 1'b0} : 8'd0);
            P_TAIL: t_byte = tail_word[8 * tc[1:0] +: 8];
            default: t_byte = crc_out[8 * tc[1:0] +: 8];
        endcase
    end
    wire t_last = (tp == P_HDR) ? (tc == 9'd9) : (tp == P_MEM) ? (tc + 9'd1 == t_alen)
                : (tp == P_TAIL) ? (tc + 9'd1 == {4'd0, tail_len}) : (tc == 9'd3);

    task reply(input [7:0] status, input [1:0] src, input [15:0] off, input [8:0] alen, input [1:0] tail);
        begin
            t_status <= status; t_src <= src; ra <= off; t_alen <= alen; t_tail <= tail;
            tp <= P_HDR; tc <= 9'd0; crc_clear <= 1'b1; state <= S_TWAIT;
        end
    endtask

    task feed(input [7:0] b);
        begin crc_in <= b; crc_go <= 1'b1; end
    endtask

    wire in_frame = (state == S_SYNC1) || (state == S_HDR) || (state == S_PAY) || (state == S_CRC);

    always @(posedge clk) begin
        tx_send <= 1'b0; crc_go <= 1'b0; crc_clear <= 1'b0; i_we <= 1'b0; w_we <= 1'b0;
        m_start <= 1'b0;
        if (rst) begin
            state <= S_SYNC0; out_valid <= 1'b0; w_ok <= 1'b0; w_crc <= 32'd0; cmd <= 8'd0; seq <= 8'd0;
        end else begin
            if (i_we) wa <= wa + 16'd1;
            if (in_frame) tocnt <= rx_valid ? 24'd0 : tocnt + 24'd1;
            if (in_frame && !rx_valid && tocnt == TIMEOUT_CLKS) begin
                if (state == S_SYNC1) state <= S_SYNC0;  // a lone 0xA5: no frame began
                else reply(TIMEOUT, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
            end else case (state)
            S_SYNC0: if (rx_valid && rx_data == SYNC0) begin state <= S_SYNC1; tocnt <= 24'd0; end
            S_SYNC1: if (rx_valid) begin
                if (rx_data == SYNC1) begin
                    state <= S_HDR; hcnt <= 3'd0; cmd <= 8'd0; seq <= 8'd0; len_ovf <= 1'b0; crc_clear <= 1'b1;
                end else if (rx_data != SYNC0) state <= S_SYNC0;
            end
            S_HDR: if (rx_valid) begin
                feed(rx_data);
                hcnt <= hcnt + 3'd1;
                case (hcnt)
                    3'd0: ver <= rx_data;
                    3'd1: hcmd <= rx_data;  // cmd and seq count only once the header is whole
                    3'd2: hseq <= rx_data;
                    3'd3: len[7:0] <= rx_data;
                    3'd4: len[15:8] <= rx_data;
                    3'd5: len_ovf <= (rx_data != 8'd0);
                    default: begin
                        cmd <= hcmd; seq <= hseq; k <= 16'd0; hcnt <= 3'd0;
                        // too long: answered at once, like the firmware; the rest is hunted past
                        if (len_ovf || rx_data != 8'd0 || len > MAX_PAYLOAD)
                            reply(BAD_LENGTH, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                        else state <= (len == 16'd0) ? S_CRC : S_PAY;
                    end
                endcase
            end
            S_PAY: if (rx_valid) begin
                feed(rx_data);
                case (k)
                    16'd0: arg0[7:0] <= rx_data;
                    16'd1: arg0[15:8] <= rx_data;
                    16'd2: arg0[23:16] <= rx_data;
                    16'd3: arg0[31:24] <= rx_data;
                    16'd4: arg1[7:0] <= rx_data;
                    16'd5: arg1[15:8] <= rx_data;
                    16'd6: arg1[23:16] <= rx_data;
                    16'd7: arg1[31:24] <= rx_data;
                    default: ;
                endcase
                k <= k + 16'd1;
                if (k + 16'd1 == len) state <= S_CRC;
            end
            S_CRC: if (rx_valid) begin  // the frame CRC goes through the CRC too: a good frame leaves RESIDUE
                feed(rx_data);
                hcnt <= hcnt + 3'd1;
                if (hcnt == 3'd3) state <= S_CHECK;
            end
            S_CHECK: if (!cbusy) begin
                ph <= 3'd0;
                if (crc != RESIDUE) reply(BAD_CRC, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                else if (ver != VERSION) reply(BAD_VERSION, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                else case (cmd)
                C_IDENTIFY: reply(OK, SRC_ID, 16'd0, ID_BYTES, TAIL_WCRC);
                C_LOAD_INPUT:
                    if (len < 16'd4) reply(BAD_PAYLOAD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (arg0_big || end_at > IN_BYTES) reply(INPUT_RANGE, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else begin out_valid <= 1'b0; ra <= 16'd4; wa <= arg0[15:0]; state <= S_LDIN; end
                C_INVOKE:
                    if (len != 16'd4) reply(BAD_PAYLOAD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (W_BYTES != 0 && !w_ok) reply(NO_WEIGHTS, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else begin ra <= 16'd0; crc_clear <= 1'b1; state <= S_ICRC; end
                C_READ_OUTPUT:
                    if (len != 16'd8) reply(BAD_PAYLOAD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (!out_valid) reply(NO_OUTPUT, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (arg0_big || |arg1[31:16] || end_at > OUT_BYTES || arg1[15:0] > MAX_PAYLOAD - 1)
                        reply(OUTPUT_RANGE, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else reply(OK, SRC_OUT, arg0[15:0], arg1[8:0], TAIL_NONE);
                C_ECHO: reply(OK, SRC_RX, 16'd0, (len < MAX_PAYLOAD) ? len[8:0] : MAX_PAYLOAD - 1, TAIL_NONE);
                C_RESET: begin out_valid <= 1'b0; reply(OK, SRC_ID, 16'd0, 9'd0, TAIL_NONE); end
                C_LOAD_WEIGHTS:
                    if (W_BYTES == 0) reply(UNKNOWN_CMD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (len < 16'd4 || arg0[1:0] != 2'd0 || len[1:0] != 2'd0)
                        reply(BAD_PAYLOAD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (arg0_big || end_at > W_BYTES) reply(WEIGHTS_RANGE, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else begin w_ok <= 1'b0; w_waddr <= arg0[15:2]; ra <= 16'd4; state <= S_LDW; end
                C_COMMIT_WEIGHTS:
                    if (W_BYTES == 0) reply(UNKNOWN_CMD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else if (len != 16'd4) reply(BAD_PAYLOAD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                    else begin ra <= 16'd0; crc_clear <= 1'b1; state <= S_WCRC; end
                default: reply(UNKNOWN_CMD, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                endcase
            end
            // payload bytes 4.. -> input buffer from arg0 (ph 0: the payload buffer reads ra; 1: write)
            S_LDIN: if (ph == 3'd0) begin
                if (ra == len) reply(OK, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                else ph <= 3'd1;
            end else begin
                i_we <= 1'b1; ra <= ra + 16'd1; ph <= 3'd0;  // written next cycle at wa, which then steps
            end
            // payload bytes 4.. -> weight words (little endian) from word arg0 / 4
            S_LDW: if (ph == 3'd0) begin
                if (ra == len) reply(OK, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                else ph <= 3'd1;
            end else begin
                w_wdata <= {rx_q, w_wdata[31:8]};
                if (ra[1:0] == 2'd3) w_we <= 1'b1;           // written next cycle at w_waddr
                if (ra[1:0] == 2'd0 && ra != 16'd4) w_waddr <= w_waddr + 14'd1;
                ra <= ra + 16'd1; ph <= 3'd0;
            end
            // INVOKE: CRC of the whole input buffer against the host's, then the model, then the output's CRC
            S_ICRC: if (!cbusy) begin
                if (ph == 3'd0) begin
                    if (ra == IN_BYTES) begin
                        if (crc_out != arg0) begin
                            val <= crc_out; reply(INPUT_CHECKSUM, SRC_ID, 16'd0, 9'd0, TAIL_VAL);
                        end else begin m_start <= 1'b1; cycles <= 32'd0; state <= S_RUN; end
                    end else ph <= 3'd1;
                end else begin feed(in_q); ra <= ra + 16'd1; ph <= 3'd0; end
            end
            S_RUN: begin
                cycles <= cycles + 32'd1;
                if (m_done) begin ra <= 16'd0; ph <= 3'd0; crc_clear <= 1'b1; state <= S_OCRC; end
            end
            S_OCRC: if (!cbusy) begin
                if (ph == 3'd0) begin
                    if (ra == OUT_BYTES) begin
                        out_valid <= 1'b1; val <= crc_out;  // model_rc 0, ticks (u64), output crc
                        reply(OK, SRC_ID, 16'd0, 9'd0, TAIL_INVOKE);
                    end else ph <= 3'd1;
                end else begin feed(out_q); ra <= ra + 16'd1; ph <= 3'd0; end
            end
            // COMMIT_WEIGHTS: CRC of the weight image read back from the weight memory
            S_WCRC: if (!cbusy) begin
                if (ph == 3'd0) begin
                    if (ra == W_WORDS) begin
                        if (crc_out == arg0) begin
                            w_ok <= 1'b1; w_crc <= arg0; reply(OK, SRC_ID, 16'd0, 9'd0, TAIL_NONE);
                        end else begin val <= crc_out; reply(WEIGHTS_CHECKSUM, SRC_ID, 16'd0, 9'd0, TAIL_VAL); end
                    end else ph <= 3'd1;
                end else begin
                    feed(w_rdata[8 * (ph - 3'd1) +: 8]);
                    if (ph == 3'd4) begin ra <= ra + 16'd1; ph <= 3'd0; end
                    else ph <= ph + 3'd1;
                end
            end
            // ---- the response, a byte per UART slot; the CRC covers version .. last data byte ----
            S_TWAIT: if (!tx_busy && !tx_send && !cbusy) state <= S_TSEND;
            S_TSEND: begin
                tx_send <= 1'b1; tx_data <= t_byte;
                if (tp != P_CRC && !(tp == P_HDR && tc < 9'd2)) feed(t_byte);
                if (tp == P_MEM) ra <= ra + 16'd1;
                tc <= tc + 9'd1;
                state <= S_TWAIT;
                if (t_last) begin
                    tc <= 9'd0;
                    case (tp)
                        P_HDR: tp <= (t_alen != 9'd0) ? P_MEM : (t_tail != TAIL_NONE) ? P_TAIL : P_CRC;
                        P_MEM: tp <= (t_tail != TAIL_NONE) ? P_TAIL : P_CRC;
                        P_TAIL: tp <= P_CRC;
                        default: state <= S_SYNC0;
                    endcase
                end
            end
            default: state <= S_SYNC0;
            endcase
        end
    end
endmodule
