import type { EventQueue } from "../engine/event-queue.js";

/**
 * The link model. Only uplinks are shaped, as on the testbed (tc tbf on each
 * host's egress; DESIGN.md: a host's upload is the scarce resource): every
 * flow leaving a host shares that host's uplink equally with the host's
 * other flows (TCP's long-run fair share), and a downlink carries whatever
 * arrives. Each uplink is a processor-sharing queue kept in virtual time:
 * `#served` is what one flow present all along would have received, so a
 * flow that started at served = s with b bytes ends when served reaches
 * s + b, and only the earliest end is ever scheduled.
 *
 * An optional CPU model slows every link at once: on the testbed every host
 * runs on the same two cores, and when the bytes in flight would need more
 * CPU than there is, everything moves slower by the same factor.
 */
export interface CpuModel {
  /** Cores shared by every host. */
  readonly cores: number;
}

export interface Flow {
  readonly bytes: number;
  readonly startedAt: number;
  /** CPU milliseconds per byte this flow costs (only with a CPU model). */
  readonly cpuPerByte: number;
  /** Set when the flow ends; NaN before. */
  endedAt: number;
}

interface ActiveFlow extends Flow {
  readonly finish: number;
  readonly onDone: (flow: Flow) => void;
}

/**
 * Slack when comparing virtual times, relative to their size: virtual time
 * grows to tens of GB, where a double's last digit is worth microbytes, and
 * rounding must not leave a flow a few ulps short with a delay too small to
 * move the clock (which would run the same completion forever).
 */
const RELATIVE_EPSILON = 1e-12;
const EPSILON_BYTES = 1e-6;

export class Fabric {
  readonly #events: EventQueue;
  readonly #cpu: CpuModel | undefined;
  readonly #busy = new Set<Uplink>();
  #scale = 1;
  #cpuBusyMs = 0;
  #cpuSince = 0;
  /** CPU milliseconds per millisecond the flows use since #cpuSince. */
  #cpuRate = 0;

  constructor(events: EventQueue, cpu?: CpuModel) {
    this.#events = events;
    this.#cpu = cpu;
  }

  get events(): EventQueue {
    return this.#events;
  }

  /** The factor every link runs at: 1 unless the CPU is the bottleneck. */
  get scale(): number {
    return this.#scale;
  }

  /** CPU milliseconds the flows have used so far (0 without a CPU model). */
  get cpuBusyMs(): number {
    return this.#cpuBusyMs + this.#cpuRate * (this.#events.now - this.#cpuSince);
  }

  /** An uplink carrying `bytesPerMs` (before any CPU slow-down). */
  uplink(bytesPerMs: number, name = "uplink"): Uplink {
    if (!(bytesPerMs > 0)) throw new RangeError(`an uplink needs a positive rate, got ${bytesPerMs}`);
    return new Uplink(this, bytesPerMs, name);
  }

  /** @internal An uplink's flows changed. */
  changed(uplink: Uplink): void {
    if (uplink.active > 0) this.#busy.add(uplink);
    else this.#busy.delete(uplink);
    if (this.#cpu === undefined) {
      uplink.reschedule();
      return;
    }
    const now = this.#events.now;
    this.#cpuBusyMs += this.#cpuRate * (now - this.#cpuSince);
    this.#cpuSince = now;
    let demand = 0;
    for (const busy of this.#busy) demand += busy.cpuDemand();
    const scale = demand > this.#cpu.cores ? this.#cpu.cores / demand : 1;
    this.#cpuRate = demand * scale;
    if (scale === this.#scale) {
      uplink.reschedule();
      return;
    }
    for (const busy of this.#busy) busy.advance();
    this.#scale = scale;
    for (const busy of this.#busy) busy.reschedule();
    if (!this.#busy.has(uplink)) uplink.reschedule();
  }
}

export class Uplink {
  readonly name: string;
  readonly #fabric: Fabric;
  readonly #rate: number;
  #flows: ActiveFlow[] = [];
  #served = 0;
  #updatedAt = 0;
  #cpuPerByteSum = 0;
  #token = 0;
  #bytesSent = 0;
  #busySince = 0;
  #busyMs = 0;

  constructor(fabric: Fabric, bytesPerMs: number, name: string) {
    this.#fabric = fabric;
    this.#rate = bytesPerMs;
    this.name = name;
  }

  /** Bytes per millisecond before any CPU slow-down. */
  get rate(): number {
    return this.#rate;
  }

  /** Flows sharing the link now. */
  get active(): number {
    return this.#flows.length;
  }

  /** Bytes of flows that ended. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Milliseconds during which at least one flow was on the link. */
  get busyMs(): number {
    return this.#busyMs + (this.#flows.length > 0 ? this.#fabric.events.now - this.#busySince : 0);
  }

  /** Starts a flow of `bytes`; `onDone` runs when its last byte left. */
  send(bytes: number, onDone: (flow: Flow) => void, cpuPerByte = 0): Flow {
    if (!(bytes > 0)) throw new RangeError(`a flow needs a positive size, got ${bytes}`);
    this.advance();
    if (this.#flows.length === 0) this.#busySince = this.#fabric.events.now;
    const flow: ActiveFlow = { bytes, startedAt: this.#fabric.events.now, cpuPerByte, endedAt: Number.NaN, finish: this.#served + bytes, onDone };
    this.#flows.push(flow);
    this.#cpuPerByteSum += cpuPerByte;
    this.#fabric.changed(this);
    return flow;
  }

  /** @internal CPU milliseconds per millisecond this link's flows need at full speed. */
  cpuDemand(): number {
    const n = this.#flows.length;
    return n === 0 ? 0 : (this.#rate / n) * this.#cpuPerByteSum;
  }

  /** @internal Brings virtual time up to now. */
  advance(): void {
    const now = this.#fabric.events.now;
    const n = this.#flows.length;
    if (n > 0) this.#served += ((now - this.#updatedAt) * this.#rate * this.#fabric.scale) / n;
    this.#updatedAt = now;
  }

  /** @internal Schedules the next end of a flow (any earlier schedule is void). */
  reschedule(): void {
    const token = ++this.#token;
    const n = this.#flows.length;
    if (n === 0) return;
    let next = Number.POSITIVE_INFINITY;
    for (const flow of this.#flows) if (flow.finish < next) next = flow.finish;
    const delay = (Math.max(0, next - this.#served) * n) / (this.#rate * this.#fabric.scale);
    this.#fabric.events.after(delay, () => {
      if (token === this.#token) this.#complete();
    });
  }

  #complete(): void {
    this.advance();
    const limit = this.#served + Math.max(EPSILON_BYTES, this.#served * RELATIVE_EPSILON);
    let done = this.#flows.filter((flow) => flow.finish <= limit);
    if (done.length === 0) {
      const next = Math.min(...this.#flows.map((flow) => flow.finish));
      const delay = ((next - this.#served) * this.#flows.length) / (this.#rate * this.#fabric.scale);
      if (this.#fabric.events.now + delay > this.#fabric.events.now) {
        this.reschedule();
        return;
      }
      // The rest is below what the clock can resolve: those flows are done now.
      done = this.#flows.filter((flow) => flow.finish <= next);
      this.#served = next;
    }
    this.#flows = this.#flows.filter((flow) => !done.includes(flow));
    const now = this.#fabric.events.now;
    if (this.#flows.length === 0) this.#busyMs += now - this.#busySince;
    for (const flow of done) {
      this.#cpuPerByteSum -= flow.cpuPerByte;
      this.#bytesSent += flow.bytes;
      flow.endedAt = now;
    }
    if (this.#flows.length === 0) this.#cpuPerByteSum = 0;
    this.#fabric.changed(this);
    for (const flow of done) flow.onDone(flow);
  }
}
