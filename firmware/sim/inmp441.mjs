// An INMP441 I2S MEMS microphone on the emulated RP2040's pins, as its datasheet describes it
// (InvenSense DS-INMP441 rev 1.1, "I2S data interface" and Figure 7):
// - the RP2040 is the clock master: it drives SCK and WS; the microphone only answers on SD;
// - SD changes on the falling edge of SCK (the receiver samples on the rising edge);
// - L/R tied low: the microphone speaks in the slot where WS is low (left) and leaves SD
//   high-impedance in the other one (the board's pull-down then reads 0);
// - 24-bit two's complement, MSB first, the MSB one SCK period after WS changes (I2S), then the
//   remaining bits of the 32-bit slot high-impedance.
// - at start-up it frames only on a real WS edge: until WS has changed once, SD stays low (the
//   datasheet's start-up: data is valid from the first frame that begins with a WS transition;
//   starting on the first SCK edge would shift every sample one bit late).
// It also measures the clocks it is given: the frame rate, and stalls (a bit clock period more
// than twice the usual one, which is what a full PIO FIFO does to an I2S master).

export class Inmp441 {
  /**
   * @param rp2040 the emulated chip
   * @param pins `{ sck, ws, sd }` GPIO numbers
   * @param next returns the next 24-bit sample (an integer) each time a left slot starts
   * @param nowCycles returns the emulated time in system clock cycles
   * @param GPIOPinState rp2040js's pin state enum
   */
  constructor(rp2040, pins, next, nowCycles, GPIOPinState) {
    this.High = GPIOPinState.High;
    this.sd = rp2040.gpio[pins.sd];
    this.ws = rp2040.gpio[pins.ws];
    this.next = next;
    this.nowCycles = nowCycles;
    this.frames = 0;
    this.firstFrameCycle = null;
    this.lastFrameCycle = null;
    this.stalls = []; // cycles at which a stalled bit clock resumed
    this.period = null; // cycles between falling edges, once steady
    this.lastFall = null;
    this.slotWs = null; // WS level of the current slot (null until the first SCK edge)
    this.framing = false; // true once WS has changed after the first edge
    this.pos = 0; // falling edges since WS changed
    this.sample = 0;
    rp2040.gpio[pins.sck].addListener((state, old) => {
      if (old === GPIOPinState.High && state === GPIOPinState.Low) this.falling();
    });
  }

  falling() {
    const now = this.nowCycles();
    if (this.lastFall !== null) {
      const gap = now - this.lastFall;
      if (this.period === null || gap < this.period) this.period = gap;
      else if (gap > 2 * this.period) this.stalls.push(now);
    }
    this.lastFall = now;
    const ws = this.ws.value === this.High;
    if (this.slotWs === null) {
      // The first edge only records WS: no frame starts without a WS change.
      this.slotWs = ws;
    } else if (ws !== this.slotWs) {
      this.slotWs = ws;
      this.framing = true;
      this.pos = 0;
      if (!ws) this.startFrame(now);
    } else {
      this.pos++;
    }
    // Left slot: bits 23..0 on the 1st..24th falling edge after WS fell.
    const bit = this.framing && !ws && this.pos >= 1 && this.pos <= 24 ? (this.sample >> (24 - this.pos)) & 1 : 0;
    this.sd.setInputValue(bit === 1);
  }

  startFrame(now) {
    this.sample = this.next() & 0xffffff;
    this.frames++;
    if (this.firstFrameCycle === null) this.firstFrameCycle = now;
    this.lastFrameCycle = now;
  }

  /** Frames per second of emulated time, from the first to the last frame seen. */
  frameRate(sysHz) {
    if (this.frames < 2) return 0;
    return ((this.frames - 1) * sysHz) / (this.lastFrameCycle - this.firstFrameCycle);
  }
}
