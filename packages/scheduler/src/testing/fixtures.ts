import { create, DownloadSchema, HostSchema, HostType, type Host } from "@lacewing/api";
import { newPeer, type Peer, type PeerState } from "../resource/peer.js";
import { ResourceRegistry } from "../resource/resource-registry.js";
import type { HostRecord } from "../resource/host.js";
import type { Task } from "../resource/task.js";

export type HostFields = Partial<Omit<Host, "$typeName" | "$unknown">>;

/** A host announcement with sensible test defaults. */
export function hostInfo(id: string, fields: HostFields = {}): Host {
  return create(HostSchema, {
    id,
    ip: "127.0.0.1",
    hostname: id,
    port: 1,
    downloadPort: 2,
    type: HostType.NORMAL,
    concurrentUploadLimit: 10,
    announceIntervalSeconds: 30,
    ...fields,
  });
}

/** A registry with one task, for unit tests of filtering and scoring. */
export function taskWorld(now = 1_000_000): {
  registry: ResourceRegistry;
  task: Task;
  host: (id: string, fields?: HostFields) => HostRecord;
  peer: (id: string, hostId: string, state?: PeerState, pieces?: number[], triggered?: boolean) => Peer;
} {
  const registry = new ResourceRegistry();
  const task = registry.ensureTask("a".repeat(64), create(DownloadSchema, { url: "http://origin/file" }), now);
  return {
    registry,
    task,
    host: (id, fields = {}) => registry.announceHost(hostInfo(id, fields), now, undefined),
    peer: (id, hostId, state = "running", pieces = [], triggered = false) => {
      const host = registry.hosts.get(hostId);
      if (host === undefined) throw new Error(`no host ${hostId}`);
      const peer = newPeer({ id, taskId: task.id, hostId, triggered, heldPieces: pieces, now });
      peer.state = state;
      registry.addPeer(task, host, peer);
      return peer;
    },
  };
}
