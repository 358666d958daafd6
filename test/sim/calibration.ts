import type { SimInput, TestbedCpu } from "./model/options.js";

/**
 * The testbed runs the simulator is calibrated against, with what was
 * measured there: docs/BENCHMARKS.md, "The data path against BitTorrent
 * (2026-12-01)", final code. `measuredSeconds` is the table row's "s to last
 * peer" (from launching every dfget); `otherRunsSeconds` are the other runs
 * of the same code that section quotes. They are only compared with, never
 * fed in. What is fed in is the testbed's set-up (8 or 16 peer hosts, one
 * seed, nginx as the origin, every uplink tbf-capped, a 128 MiB blob) and,
 * for the CPU model, what the same row measured each byte to cost.
 */
export interface CalibrationCase {
  name: string;
  input: SimInput;
  measuredSeconds: number;
  otherRunsSeconds: readonly number[];
  source: string;
}

const MiB = 1024 * 1024;
const BLOB = 128 * MiB;
/** The two cores of the development machine every testbed host shares. */
const CORES = 2;
/** "dfget is 0.3 CPU-s per host per run (2.4 CPU-s per GiB of the 13.4 at 128 MiB)". */
const DFGET_CPU_SECONDS = 0.3;
const DFGET_CPU_PER_GIB = DFGET_CPU_SECONDS / (BLOB / 1024 ** 3);
/** tbf's `latency 50ms` (test/testbed/netns.ts): how long a message may queue behind a saturated uplink. */
const TBF_QUEUE_MS = 50;
/** One bridge, veth pairs: well under a millisecond. */
const BRIDGE_LATENCY_MS = 0.1;

/**
 * The testbed's CPU: the row's "CPU-s per GiB received, per peer host"
 * counts every process in the host (daemon and dfget); dfget's start-up is
 * modelled on its own (it delays the request), so the daemon's share is the
 * rest. The seed's figure is per GiB sent, about what it fetched.
 */
function testbedCpu(peerCpuPerGiB: number, seedCpuPerGiB: number): TestbedCpu {
  return {
    cores: CORES,
    peerCpuSecondsPerGiB: peerCpuPerGiB - DFGET_CPU_PER_GIB,
    seedCpuSecondsPerGiB: seedCpuPerGiB,
    dfgetStartCpuSeconds: DFGET_CPU_SECONDS,
  };
}

function testbedInput(nodes: number, rateMbit: number, cpu: TestbedCpu | undefined): SimInput {
  return {
    nodes,
    sizeBytes: BLOB,
    rateMbit,
    latencyMs: BRIDGE_LATENCY_MS,
    queueMs: TBF_QUEUE_MS,
    // N dfget processes start at once on the shared cores: their requests reach the daemons when all of them got their CPU.
    startMs: cpu === undefined ? 0 : (nodes * cpu.dfgetStartCpuSeconds * 1000) / cpu.cores,
    cpu,
    // The real scheduler re-judges outliers on every report; at 8 or 16 peers that is cheap, so the simulator does too.
    outlierIntervalMs: 0,
    wakeIntervalMs: 0,
  };
}

const SOURCE = "docs/BENCHMARKS.md, The data path against BitTorrent (2026-12-01)";

/** The three documented testbed runs, each with and without the testbed's CPU in the model. */
export function calibrationCases(withCpu: boolean): CalibrationCase[] {
  return [
    {
      name: "N=8, 200 Mbit/s",
      input: testbedInput(8, 200, withCpu ? testbedCpu(13.4, 9.0) : undefined),
      measuredSeconds: 8.82,
      otherRunsSeconds: [9.1, 8.09],
      source: SOURCE,
    },
    {
      name: "N=8, 50 Mbit/s",
      input: testbedInput(8, 50, withCpu ? testbedCpu(23.1, 16.5) : undefined),
      measuredSeconds: 28.49,
      otherRunsSeconds: [27.48],
      source: SOURCE,
    },
    {
      name: "N=16, 50 Mbit/s",
      input: testbedInput(16, 50, withCpu ? testbedCpu(32.1, 14.7) : undefined),
      measuredSeconds: 41.33,
      otherRunsSeconds: [36.79],
      source: SOURCE,
    },
  ];
}
