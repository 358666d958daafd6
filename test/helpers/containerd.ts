import { readdir, stat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { exec, startBinary } from "./commands.js";
import type { CommandResult, RunningProcess } from "./processes.js";

/**
 * A private containerd per test node: its own root, state, socket and
 * config, with only the plugins a pull needs (no CRI), pulling into the
 * `native` snapshotter (works inside containers where overlayfs may not).
 * Needs root.
 */
export interface Containerd extends RunningProcess {
  address: string;
  root: string;
  /** `ctr images pull` through the hosts.toml files under `hostsDir`. */
  pull: (reference: string, hostsDir: string, extra?: string[]) => Promise<CommandResult>;
  ctr: (args: string[]) => Promise<CommandResult>;
  /** Absolute path of `path` (inside the image) in the newest native snapshot holding it, if any. */
  findInSnapshots: (path: string) => Promise<string | undefined>;
  /**
   * `ctr run --rm` of a pulled image on the host network, attached: the
   * returned process is ctr, which forwards the signals it gets (stop()'s
   * SIGTERM) to the container's PID 1 and exits with the container's status.
   * `argv` replaces the image's entrypoint and command both, as ctr does.
   */
  run: (image: string, id: string, argv: string[], options?: RunOptions) => RunningProcess;
}

export interface RunOptions {
  /** Host directory → path in the container, read-write. */
  binds?: Record<string, string>;
  env?: Record<string, string>;
  /** Which lines of the container's output output() shows (all by default). */
  keep?: (line: string) => boolean;
}

const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
];

export async function startContainerd(dir: string): Promise<Containerd> {
  const root = join(dir, "root");
  const state = join(dir, "state");
  const address = join(dir, "containerd.sock");
  await mkdir(dir, { recursive: true });
  const config = join(dir, "config.toml");
  await writeFile(
    config,
    [
      "version = 2",
      `root = ${JSON.stringify(root)}`,
      `state = ${JSON.stringify(state)}`,
      `disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}`,
      "[grpc]",
      `  address = ${JSON.stringify(address)}`,
      "[ttrpc]",
      `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
      "[debug]",
      '  address = ""',
      "[metrics]",
      '  address = ""',
      "",
    ].join("\n"),
  );
  const daemon = startBinary("containerd", ["--config", config, "--log-level", "warn"]);
  const ctr = (args: string[]): Promise<CommandResult> => exec("ctr", ["--address", address, "--namespace", "lacewing-test", ...args]);
  for (let i = 0; ; i++) {
    if (daemon.child.exitCode !== null) throw new Error(`containerd exited: ${daemon.output()}`);
    if ((await ctr(["version"])).code === 0) break;
    if (i > 100) {
      await daemon.stop();
      throw new Error(`containerd did not start: ${daemon.output()}`);
    }
    await sleep(100);
  }
  return {
    ...daemon,
    address,
    root,
    ctr,
    run: (image, id, argv, options = {}) =>
      startBinary(
        "ctr",
        [
          "--address",
          address,
          "--namespace",
          "lacewing-test",
          "run",
          "--rm",
          "--net-host",
          "--snapshotter",
          "native",
          ...Object.entries(options.binds ?? {}).flatMap(([src, dst]) => ["--mount", `type=bind,src=${src},dst=${dst},options=rbind:rw`]),
          ...Object.entries(options.env ?? {}).flatMap(([key, value]) => ["--env", `${key}=${value}`]),
          image,
          id,
          ...argv,
        ],
        options.keep === undefined ? {} : { keep: options.keep },
      ),
    pull: (reference, hostsDir, extra = []) => ctr(["images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", ...extra, reference]),
    findInSnapshots: async (path) => {
      const snapshots = join(root, "io.containerd.snapshotter.v1.native", "snapshots");
      let newest: { file: string; id: number } | undefined;
      for (const id of await readdir(snapshots).catch(() => [] as string[])) {
        const file = join(snapshots, id, path);
        if ((await stat(file).catch(() => undefined))?.isFile() && (newest === undefined || Number(id) > newest.id)) newest = { file, id: Number(id) };
      }
      return newest?.file;
    },
  };
}
