import type { Download } from "@lacewing/api";
import { ErrorCode, LacewingError, errorMessage, rendezvousPick, type Logger } from "@lacewing/common";
import { isSeedHost, recordAssignment, type HostRecord } from "../resource/host.js";
import type { Peer } from "../resource/peer.js";
import type { ResourceRegistry } from "../resource/resource-registry.js";
import { forgetBackToSourcePeer, notifyTaskChanged, type Task } from "../resource/task.js";
import { filterCandidateParents, type Topology } from "./filter.js";
import { buildScoreContext, rankParents } from "./score.js";

export interface SchedulingOptions {
  candidateParentLimit: number;
  maxReschedules: number;
  /** How long a child waits for a parent to appear before going back to source, ms. */
  scheduleTimeoutMs: number;
  topology: Topology;
  /** See the scheduler's crossZoneOnce setting. */
  crossZoneOnce: boolean;
}

export interface SchedulingDeps {
  readonly registry: ResourceRegistry;
  readonly options: SchedulingOptions;
  readonly logger: Logger;
  /** Milliseconds since the epoch; injectable so tests can age hosts. */
  readonly now: () => number;
  readonly random: () => number;
  /**
   * Asks a seed host to download the task as `download` describes it (the
   * download of the child that needs it, credentials included: they are
   * handed on, never kept); rejects if the host refuses.
   */
  readonly triggerSeed: (host: HostRecord, task: Task, download: Download) => Promise<void>;
}

/**
 * Why a peer is sent back to source, as a stable metric label: it is the
 * task's designated source (`seed`: a seed peer or a triggered download;
 * `first_peer`: no seed is alive, so the first child fetches), or no parent
 * appeared in time (`timeout`), or it ran out of reschedules (`reschedules`).
 */
export type BackToSourceCause = "seed" | "first_peer" | "timeout" | "reschedules" | "tainted";

export type ScheduleResult = { kind: "parents"; parents: Peer[] } | { kind: "back_to_source"; reason: string; cause: BackToSourceCause } | { kind: "empty" };

/** The best parents for the child right now, at most candidateParentLimit, leaving out `exclude` (parents it already has). */
export function chooseParents(deps: SchedulingDeps, task: Task, child: Peer, childHost: HostRecord, exclude: ReadonlySet<string> = new Set()): Peer[] {
  const now = deps.now();
  const base = {
    task,
    child,
    childHost,
    hosts: deps.registry.hosts,
    topology: deps.options.topology,
    now,
    ownZone: sourceZoneOf(deps, childHost, now) !== "" || zoneHasEarlierPeer(deps, task, child, childHost, now),
  };
  let candidates = filterCandidateParents(base).filter((parent) => !exclude.has(parent.id));
  const good = candidates.filter((parent) => !task.badParents.has(parent.id));
  if (good.length > 0) candidates = good;
  const chosen = rankParents(buildScoreContext(base, candidates), candidates, deps.random).slice(0, deps.options.candidateParentLimit);
  for (const parent of chosen) child.parentsGiven.add(parent.id);
  return chosen;
}

/**
 * The part of the cluster whose peers share one source of a task, for the
 * child's host: its idc under isolation, or under affinity with
 * crossZoneOnce when that idc has a seed peer of its own (the zone is then
 * served from inside); otherwise "", the whole cluster.
 */
export function sourceZoneOf(deps: SchedulingDeps, host: HostRecord, now: number): string {
  const idc = host.info.idc;
  if (deps.options.topology === "isolation") return idc;
  if (!deps.options.crossZoneOnce) return "";
  return deps.registry.aliveSeedHosts(now).some((seed) => seed.info.idc === idc) ? idc : "";
}

/** Peers of a task in one zone per peer that may fetch from other zones for it (see zoneHasEarlierPeer). */
const PEERS_PER_ZONE_GATEWAY = 64;

/**
 * Under affinity, the first peers of a zone without a seed peer (one per
 * PEERS_PER_ZONE_GATEWAY of the task's peers there) fetch from other zones
 * and the zone's later peers from inside it, so each piece crosses about
 * once: true when enough live peers of the task in the child's idc
 * registered before it. With idc unset everywhere, every host is one zone
 * and this changes nothing.
 */
function zoneHasEarlierPeer(deps: SchedulingDeps, task: Task, child: Peer, childHost: HostRecord, now: number): boolean {
  if (deps.options.topology !== "affinity" || !deps.options.crossZoneOnce) return false;
  let earlier = 0;
  let inZone = 0;
  for (const peer of task.peers.values()) {
    if (peer === child || peer.state === "failed") continue;
    const host = deps.registry.aliveHost(peer.hostId, now);
    if (host === undefined || host.id === childHost.id || host.info.idc !== childHost.info.idc) continue;
    inZone++;
    if (peer.createdAt < child.createdAt || (peer.createdAt === child.createdAt && peer.id < child.id)) earlier++;
  }
  return earlier >= Math.max(1, Math.ceil(inZone / PEERS_PER_ZONE_GATEWAY));
}

/** Another peer is fetching the task from the origin (or was just told to and has not said it started). */
function sourceInProgress(deps: SchedulingDeps, task: Task, child: Peer, zone: string): boolean {
  const id = task.backToSourcePeers.get(zone);
  if (id === undefined || id === child.id) return false;
  const source = task.peers.get(id);
  return (
    source !== undefined &&
    (source.state === "pending" || source.state === "back_to_source") &&
    deps.registry.aliveHost(source.hostId, deps.now()) !== undefined
  );
}

/** Some other peer on an alive host of the child's source zone already fetches the content or holds part of it. */
function contentIsFlowing(deps: SchedulingDeps, task: Task, child: Peer, zone: string): boolean {
  const now = deps.now();
  for (const peer of task.peers.values()) {
    if (peer === child || peer.state === "failed") continue;
    const host = deps.registry.aliveHost(peer.hostId, now);
    if (host === undefined || (zone !== "" && host.info.idc !== zone)) continue;
    if (peer.state === "back_to_source" || peer.state === "succeeded" || peer.pieces.size > 0) return true;
  }
  return false;
}

/**
 * Decides what the child does next: download from parents, go back to
 * source, or (zero bytes) nothing. When no parent exists yet it makes sure
 * exactly one source of the content starts — one seed peer, or else one
 * back-to-source child — and waits until a parent appears or the schedule
 * timeout passes. `download` is the child's own request (for a seed trigger).
 */
export async function schedulePeer(deps: SchedulingDeps, task: Task, child: Peer, download: Download, signal: AbortSignal): Promise<ScheduleResult> {
  const { options, registry } = deps;
  if (child.reschedules > options.maxReschedules) return { kind: "back_to_source", reason: "too many reschedules", cause: "reschedules" };
  const deadline = Date.now() + options.scheduleTimeoutMs;
  for (;;) {
    if (signal.aborted) throw new LacewingError(ErrorCode.cancelled, "cancelled", "the peer left while waiting for parents");
    if (task.contentLength === 0) return { kind: "empty" };
    const childHost = registry.hosts.get(child.hostId);
    if (childHost === undefined || task.peers.get(child.id) !== child)
      throw new LacewingError(ErrorCode.peerGone, "aborted", "the peer was removed while waiting for parents");

    const zone = sourceZoneOf(deps, childHost, deps.now());
    if (task.tainted && task.persistent === undefined && !sourceInProgress(deps, task, child, zone)) {
      // A peer found the last copies wrong: this one fetches from the origin itself, not from a seed's cache.
      task.backToSourcePeers.set(zone, child.id);
      return { kind: "back_to_source", reason: "the copies peers held did not match the task's digest", cause: "tainted" };
    }
    const parents = chooseParents(deps, task, child, childHost);
    if (parents.length > 0) {
      const now = deps.now();
      for (const parent of parents) {
        const host = registry.hosts.get(parent.hostId);
        if (host !== undefined) recordAssignment(host, now);
      }
      if (child.state === "pending") child.state = "running";
      return { kind: "parents", parents };
    }
    if (task.persistent !== undefined) {
      // A persistent cache task has no origin: the child waits for a holder, and nobody is sent to the source.
    } else if (isSeedHost(childHost) || child.triggered) {
      // A seed peer (or a triggered download) is the source the others wait
      // for, unless another one was just sent to the source and has not
      // started yet: a preheat triggers all seed peers (or all peers) at
      // once, and they should fetch the bytes once, not once each.
      if (!otherSourceStarting(deps, task, child, zone)) {
        task.backToSourcePeers.set(zone, child.id);
        return { kind: "back_to_source", reason: "seed peer fetches from the origin", cause: "seed" };
      }
    } else if (!contentIsFlowing(deps, task, child, zone)) {
      const started = startSource(deps, task, child, download, zone);
      if (started === "child") return { kind: "back_to_source", reason: "no peer holds the task yet", cause: "first_peer" };
    }

    const left = deadline - Date.now();
    const outcome = left <= 0 ? "timeout" : await registry.waitForChange(task, left, signal);
    if (outcome === "timeout")
      return {
        kind: "back_to_source",
        reason: task.persistent === undefined ? "no parent appeared in time" : "no holder of the persistent task can serve it",
        cause: "timeout",
      };
  }
}

/** Another peer was sent back to source for this task and has not reported that it started. */
function otherSourceStarting(deps: SchedulingDeps, task: Task, child: Peer, zone: string): boolean {
  const id = task.backToSourcePeers.get(zone);
  if (id === undefined || id === child.id) return false;
  const source = task.peers.get(id);
  return source !== undefined && source.state === "pending" && deps.registry.aliveHost(source.hostId, deps.now()) !== undefined;
}

/**
 * Starts the one source of a task nobody fetches yet. With alive seed hosts
 * the rendezvous-chosen seed is triggered once per task; otherwise (or when
 * the seed failed) the first child to ask is the one that goes back to
 * source, and the rest wait for it. Returns "child" when that child is this
 * one, "other" when the source is someone else.
 */
function startSource(deps: SchedulingDeps, task: Task, child: Peer, download: Download, zone: string): "child" | "other" {
  const now = deps.now();
  const trigger = task.seedTriggers.get(zone);
  const triggerLive =
    trigger !== undefined &&
    (trigger.state === "pending" ||
      (trigger.state === "accepted" && (now - trigger.at < deps.options.scheduleTimeoutMs || hasActivePeerOn(task, trigger.hostId))));
  if (triggerLive) return "other";
  if (trigger?.state !== "failed") {
    const seeds = deps.registry.aliveSeedHosts(now).filter((host) => !task.taintedHosts.has(host.id) && (zone === "" || host.info.idc === zone));
    const hostId = rendezvousPick(
      task.id,
      seeds.map((host) => host.id),
    );
    const seed = hostId === undefined ? undefined : deps.registry.hosts.get(hostId);
    if (seed !== undefined) {
      triggerSeed(deps, task, seed, download, now, zone);
      return "other";
    }
  }
  const currentId = task.backToSourcePeers.get(zone);
  const current = currentId === undefined ? undefined : task.peers.get(currentId);
  if (current !== undefined && current.state !== "failed" && deps.registry.aliveHost(current.hostId, now) !== undefined)
    return current === child ? "child" : "other";
  task.backToSourcePeers.set(zone, child.id);
  return "child";
}

function hasActivePeerOn(task: Task, hostId: string): boolean {
  for (const peer of task.peers.values()) if (peer.hostId === hostId && peer.state !== "failed") return true;
  return false;
}

function triggerSeed(deps: SchedulingDeps, task: Task, seed: HostRecord, download: Download, now: number, zone: string): void {
  const state = { hostId: seed.id, state: "pending" as "pending" | "accepted" | "failed", at: now };
  task.seedTriggers.set(zone, state);
  deps.logger.info({ taskId: task.id, hostId: seed.id }, "triggering seed peer");
  deps.triggerSeed(seed, task, download).then(
    () => {
      if (state.state === "pending") state.state = "accepted";
    },
    (err: unknown) => {
      state.state = "failed";
      deps.logger.warn({ taskId: task.id, hostId: seed.id, err: errorMessage(err) }, "seed peer trigger failed");
      notifyTaskChanged(task);
    },
  );
}

/** Called when a peer leaves or fails: a failed seed download must not keep children waiting. */
export function noteSourceLost(task: Task, peer: Peer): void {
  for (const trigger of task.seedTriggers.values()) if (trigger.hostId === peer.hostId && peer.state !== "succeeded") trigger.state = "failed";
  forgetBackToSourcePeer(task, peer.id);
  notifyTaskChanged(task);
}
