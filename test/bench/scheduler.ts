// Benchmark (not a test): the scheduler under the load of a large cluster.
// R lacewing-scheduler processes (each pinned to one core with taskset when
// the machine has one to spare) run with mutual TLS as in production; W load
// workers (scheduler-load.ts), each multiplexing many simulated hosts over a
// few connections, announce the hosts to every scheduler, then register
// peers, report pieces and ask for parents the way dfdaemons do, each task
// at the scheduler rendezvous hashing picks.
// Phases, in order:
//   announce   every host announces itself to every scheduler (the announce rate)
//   sources    the first peer of each task is sent to the origin and reports every piece with its digest
//   downloads  every other peer downloads, D at once: register (timed to its first parents), a report
//              per piece, more parents every 16 pieces, finished; the stream ends, the peer stays (piece reports/s)
//   probes     with every peer registered, one more peer joins each of the first K tasks, one at a time
//              per worker (register → parents at full size)
// Hosts keep re-announcing every 10 s from the end of the first phase, as daemons do.
//   npm run bench:scheduler -- --hosts H --tasks T --peers-per-task P --pieces N [--replicas R] [--workers W] [--downloads D] [--probes K] [--no-pin] [--json]
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalPki, issueCertificate } from "@lacewing/common";
import { metricValue } from "../helpers/cluster.js";
import { missingCommands, startBinary, type RunningProcess } from "../helpers/commands.js";
import { BIN, logsFrom, portOf } from "../helpers/processes.js";
import type { Phase, PhaseResult, WorkerInit } from "./scheduler-load.js";
import { BenchHelp, BenchUsageError, layoutOf, parseBenchOptions, summarize, type BenchOptions, type LatencySummary } from "./scheduler-plan.js";

const USER_HZ = 100;
const PHASES: readonly Phase[] = ["announce", "sources", "downloads", "probes"];

interface Scheduler {
  process: RunningProcess;
  pid: number;
  address: string;
  metricsPort: number;
  core: number | undefined;
}

interface PhaseFigures {
  seconds: number;
  operations: number;
  /** CPU seconds of every scheduler during the phase. */
  schedulerCpuSeconds: number;
  /** CPU seconds of every load worker during the phase: near the phase's length times their cores, they were the bottleneck. */
  workerCpuSeconds: number;
  /** Peak resident memory of the largest scheduler at the phase's end, MiB. */
  peakRssMiB: number;
  results: PhaseResult[];
}

async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** Peak and current resident memory of `pid`, in MiB (VmHWM, VmRSS). */
async function memoryOf(pid: number): Promise<{ peakRssMiB: number; rssMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peakRssMiB: Math.round(kib("VmHWM") / 102.4) / 10, rssMiB: Math.round(kib("VmRSS") / 102.4) / 10 };
}

/** Which core each scheduler gets (the last ones; the load workers keep the rest), or none without taskset or a spare core. */
async function coresFor(options: BenchOptions): Promise<{ schedulers: Array<number | undefined>; workers: number[] | undefined }> {
  const cpus = availableParallelism();
  const pin = options.pin && cpus >= 2 && (await missingCommands("taskset")).length === 0;
  if (!pin) return { schedulers: Array.from({ length: options.replicas }, () => undefined), workers: undefined };
  const schedulers = Array.from({ length: options.replicas }, (_, i) => (cpus - 1 - i + cpus * options.replicas) % cpus);
  const rest = Array.from({ length: cpus }, (_, core) => core).filter((core) => !schedulers.includes(core));
  return { schedulers, workers: rest.length > 0 ? rest : undefined };
}

/** LACEWING_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the schedulers and the workers, as it does the test helpers' processes. */
function nodeArgs(): string[] {
  return (process.env["LACEWING_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
}

async function startScheduler(tlsDir: string, core: number | undefined): Promise<Scheduler> {
  const args = [...nodeArgs(), BIN.scheduler, "--listen", "127.0.0.1:0", "--metrics-port", "0", "--tls-dir", tlsDir, "--log-level", "info"];
  const process_ =
    core === undefined
      ? startBinary(process.execPath, args, { keep: logsFrom("warn") })
      : startBinary("taskset", ["-c", String(core), process.execPath, ...args], { keep: logsFrom("warn") });
  const [line] = await process_.waitForLines(/"msg":"scheduler started"/);
  const started = JSON.parse(line!) as Record<string, unknown>;
  return { process: process_, pid: process_.child.pid!, address: `127.0.0.1:${portOf(started, "address")}`, metricsPort: portOf(started, "metricsPort"), core };
}

class Worker {
  readonly child: ChildProcess;
  #pending: { resolve: (result: PhaseResult) => void; reject: (err: Error) => void } | undefined;
  readonly #exited: Promise<void>;

  constructor(cores: number[] | undefined) {
    const module = join(dirname(fileURLToPath(import.meta.url)), "scheduler-load.js");
    const stdio = ["ignore", "inherit", "inherit", "ipc"] as const;
    this.child =
      cores === undefined
        ? fork(module, [], { execArgv: nodeArgs(), stdio: [...stdio] })
        : fork(module, [], { execPath: "taskset", execArgv: ["-c", cores.join(","), process.execPath, ...nodeArgs()], stdio: [...stdio] });
    this.child.on("message", (message: PhaseResult | { kind: "ready" }) => this.#pending?.resolve(message as PhaseResult));
    this.#exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        this.#pending?.reject(new Error(`a load worker exited (${code ?? signal}) in the middle of a phase`));
        resolve();
      }),
    );
  }

  #next<T>(send: () => void): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#pending = {
        resolve: (result) => {
          this.#pending = undefined;
          resolve(result as T);
        },
        reject,
      };
      send();
    });
  }

  init(message: WorkerInit): Promise<void> {
    return this.#next(() => this.child.send(message));
  }

  run(phase: Phase): Promise<PhaseResult> {
    return this.#next(() => this.child.send({ kind: "phase", phase }));
  }

  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ kind: "close" });
    await this.#exited;
  }
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2), availableParallelism());
  } catch (err) {
    if (err instanceof BenchHelp) {
      process.stdout.write(`${err.message}\n`);
      return;
    }
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`bench:scheduler: ${err.message}\n`);
    process.exit(2);
  }
  const loadBefore = loadavg();
  const root = await mkdtemp(join(tmpdir(), "lacewing-bench-scheduler-"));
  const pki = new LocalPki();
  const cores = await coresFor(options);
  const schedulers: Scheduler[] = [];
  const workers: Worker[] = [];
  try {
    for (const [i, core] of cores.schedulers.entries())
      schedulers.push(await startScheduler(await pki.writeTlsDir(join(root, `scheduler-${i}`), "scheduler"), core));
    const addresses = schedulers.map((s) => s.address);
    const layout = layoutOf(options);
    const connections = Array.from({ length: layout.connections }, (_, index) => {
      const issued = issueCertificate(pki.ca, { role: "peer", name: `bench-${index}` });
      return { index, cert: issued.certPem, key: issued.keyPem };
    });
    for (let w = 0; w < options.workers; w++) workers.push(new Worker(cores.workers));
    await Promise.all(
      workers.map((worker, w) =>
        worker.init({
          kind: "init",
          worker: w,
          options,
          schedulers: addresses,
          ca: pki.ca.certPem,
          connections: connections.filter((c) => layout.workerOfConnection(c.index) === w),
        }),
      ),
    );

    const cpuAtStart = await Promise.all(schedulers.map((s) => cpuSecondsOf(s.pid)));
    const figures = new Map<Phase, PhaseFigures>();
    for (const phase of PHASES) {
      if (phase === "probes" && options.probes === 0) continue;
      if (!options.json) process.stderr.write(`bench:scheduler: ${phase}…\n`);
      const cpuBefore = await Promise.all(schedulers.map((s) => cpuSecondsOf(s.pid)));
      const workersBefore = await Promise.all(workers.map((w) => cpuSecondsOf(w.child.pid!)));
      const started = performance.now();
      const results = await Promise.all(workers.map((worker) => worker.run(phase)));
      const seconds = (performance.now() - started) / 1000;
      const cpuAfter = await Promise.all(schedulers.map((s) => cpuSecondsOf(s.pid)));
      const schedulerCpuSeconds = cpuAfter.reduce((sum, cpu, i) => sum + cpu - cpuBefore[i]!, 0);
      const workersAfter = await Promise.all(workers.map((w) => cpuSecondsOf(w.child.pid!)));
      const workerCpuSeconds = workersAfter.reduce((sum, cpu, i) => sum + cpu - workersBefore[i]!, 0);
      const peakRssMiB = Math.max(...(await Promise.all(schedulers.map((s) => memoryOf(s.pid)))).map((m) => m.peakRssMiB));
      figures.set(phase, {
        seconds,
        operations: results.reduce((sum, r) => sum + r.operations, 0),
        schedulerCpuSeconds,
        workerCpuSeconds,
        peakRssMiB,
        results,
      });
    }
    const cpuAtEnd = await Promise.all(schedulers.map((s) => cpuSecondsOf(s.pid)));
    const memory = await Promise.all(schedulers.map((s) => memoryOf(s.pid)));
    const acceptedBy = await Promise.all(schedulers.map((s) => metricValue(s.metricsPort, "lacewing_scheduler_piece_reports_total", { result: "finished" })));
    const accepted = acceptedBy.reduce((a, b) => a + b, 0);
    const livePeers = (await Promise.all(schedulers.map((s) => metricValue(s.metricsPort, "lacewing_scheduler_peers")))).reduce((a, b) => a + b, 0);

    const phase = (name: Phase): PhaseFigures | undefined => figures.get(name);
    const all = [...figures.values()].flatMap((f) => f.results);
    const announce = phase("announce")!;
    const pieces = phase("downloads")!;
    const sources = phase("sources")!;
    const latencies = (name: Phase): LatencySummary => summarize(phase(name)?.results.flatMap((r) => r.latencies) ?? []);
    const problems = all.reduce((sum, r) => sum + r.unexpected, 0);
    const sent = sources.operations + pieces.operations;
    const report = {
      hosts: options.hosts,
      tasks: options.tasks,
      peersPerTask: options.peersPerTask,
      pieces: options.pieces,
      replicas: options.replicas,
      workers: options.workers,
      connections: layout.connections,
      schedulerCores: cores.schedulers.map((core) => core ?? "any"),
      workerCores: cores.workers ?? "any",
      announceRate: Math.round(announce.operations / announce.seconds),
      downloadsAtOnce: options.downloads,
      registerToParentsMs: latencies("downloads"),
      fullRegisterToParentsMs: latencies("probes"),
      pieceReportsPerSecond: Math.round(pieces.operations / pieces.seconds),
      pieceReportsPerSchedulerCpuSecond: Math.round(pieces.operations / pieces.schedulerCpuSeconds),
      schedulerCpuBusyInPieces: Math.round((100 * pieces.schedulerCpuSeconds) / (pieces.seconds * options.replicas)) / 100,
      originPieceReportsPerSecond: Math.round(sources.operations / sources.seconds),
      schedulerCpuSeconds: Math.round(cpuAtEnd.reduce((sum, cpu, i) => sum + cpu - cpuAtStart[i]!, 0) * 100) / 100,
      peakRssMiB: Math.max(...memory.map((m) => m.peakRssMiB)),
      // What R replicas with a core each could take: each one's accepted reports over its CPU seconds (announces and registrations included), summed.
      capacityReportsPerSecond: Math.round(acceptedBy.reduce((sum, count, i) => sum + count / Math.max(0.01, cpuAtEnd[i]! - cpuAtStart[i]!), 0)),
      perScheduler: schedulers.map((s, i) => ({
        pieceReportsAccepted: acceptedBy[i],
        cpuSeconds: Math.round((cpuAtEnd[i]! - cpuAtStart[i]!) * 100) / 100,
        peakRssMiB: memory[i]!.peakRssMiB,
        rssMiB: memory[i]!.rssMiB,
      })),
      livePeersAtEnd: livePeers,
      pieceReportsSent: sent,
      pieceReportsAccepted: accepted,
      refreshes: all.reduce((sum, r) => sum + r.refreshes, 0),
      taskUpdates: all.reduce((sum, r) => sum + r.updates, 0),
      digestsDelivered: all.reduce((sum, r) => sum + r.digests, 0),
      reannounces: all.reduce((sum, r) => sum + r.reannounces, 0),
      phaseSeconds: Object.fromEntries([...figures].map(([name, f]) => [name, Math.round(f.seconds * 100) / 100])),
      phaseSchedulerCpuSeconds: Object.fromEntries([...figures].map(([name, f]) => [name, Math.round(f.schedulerCpuSeconds * 100) / 100])),
      phasePeakRssMiB: Object.fromEntries([...figures].map(([name, f]) => [name, f.peakRssMiB])),
      phaseWorkerCpuSeconds: Object.fromEntries([...figures].map(([name, f]) => [name, Math.round(f.workerCpuSeconds * 100) / 100])),
      // The schedulers' own complaints (warn and above), which explain most problems.
      schedulerWarnings: schedulers.reduce(
        (sum, s) =>
          sum +
          s.process
            .output()
            .split("\n")
            .filter((line) => line !== "").length,
        0,
      ),
      firstSchedulerWarning: schedulers
        .map((s) => s.process.output().split("\n")[0] ?? "")
        .find((line) => line !== "")
        ?.slice(0, 300),
      problems,
      firstProblem: all.find((r) => r.firstProblem !== undefined)?.firstProblem,
      loadAverageBefore: loadBefore.map((l) => Math.round(l * 100) / 100),
      loadAverageAfter: loadavg().map((l) => Math.round(l * 100) / 100),
    };
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else printReport(report);
    if (problems > 0 || accepted !== sent) process.exitCode = 1;
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    await Promise.all(schedulers.map((s) => s.process.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

function printReport(report: Record<string, unknown> & { registerToParentsMs: LatencySummary; fullRegisterToParentsMs: LatencySummary }): void {
  const ms = (l: LatencySummary): string => `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.samples} registrations)`;
  const lines = [
    `scheduler load: ${report["hosts"]} hosts, ${report["tasks"]} tasks × ${report["peersPerTask"]} peers, ${report["pieces"]} pieces, ${report["replicas"]} scheduler(s) on cores ${JSON.stringify(report["schedulerCores"])}, ${report["workers"]} workers on ${JSON.stringify(report["workerCores"])}`,
    `  announce rate                 ${report["announceRate"]} /s`,
    `  register → first parents      ${ms(report.registerToParentsMs)}, ${report["downloadsAtOnce"]} downloads at once`,
    `    … with every peer registered ${ms(report.fullRegisterToParentsMs)}`,
    `  piece reports                 ${report["pieceReportsPerSecond"]} /s (${report["pieceReportsPerSchedulerCpuSecond"]} per scheduler CPU second, scheduler busy ${report["schedulerCpuBusyInPieces"]})`,
    `  origin piece reports          ${report["originPieceReportsPerSecond"]} /s (with digests, fanned out to the task's peers)`,
    `  capacity (R × one core)       ${report["capacityReportsPerSecond"]} piece reports/s (each replica's reports over its CPU seconds, summed)`,
    `  scheduler CPU                 ${report["schedulerCpuSeconds"]} s ${JSON.stringify((report["perScheduler"] as Array<{ cpuSeconds: number }>).map((p) => p.cpuSeconds))}`,
    `  scheduler peak RSS            ${report["peakRssMiB"]} MiB`,
    `  peers registered at the end   ${report["livePeersAtEnd"]}`,
    `  piece reports sent/accepted   ${report["pieceReportsSent"]}/${report["pieceReportsAccepted"]}`,
    `  phases (s)                    ${JSON.stringify(report["phaseSeconds"])}`,
    `  scheduler CPU by phase (s)    ${JSON.stringify(report["phaseSchedulerCpuSeconds"])}`,
    `  peak RSS after phase (MiB)    ${JSON.stringify(report["phasePeakRssMiB"])}`,
    `  load workers' CPU by phase (s) ${JSON.stringify(report["phaseWorkerCpuSeconds"])}`,
    `  scheduler warnings            ${report["schedulerWarnings"]}${report["firstSchedulerWarning"] === undefined ? "" : ` (first: ${report["firstSchedulerWarning"]})`}`,
    `  problems                      ${report["problems"]}${report["firstProblem"] === undefined ? "" : ` (first: ${report["firstProblem"]})`}`,
    `  load average before/after     ${JSON.stringify(report["loadAverageBefore"])} / ${JSON.stringify(report["loadAverageAfter"])}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
