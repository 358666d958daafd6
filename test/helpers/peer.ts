import { createClient, dfdaemonv1, type RpcClient } from "@lacewing/api";
import { MEMBER_ROLES, type Role } from "@lacewing/common";
import { requestPiece, type PieceAnswer } from "@lacewing/dfdaemon";
import { pki } from "./pki.js";

export type PeerServiceClient = RpcClient<typeof dfdaemonv1.DfdaemonPeer>;

/** A client of a daemon's peer port (SyncPieces, TriggerDownload) holding a certificate of `role`. */
export function peerClient(peerPort: number, role: Role = "peer", name = "test-child"): PeerServiceClient {
  return createClient(dfdaemonv1.DfdaemonPeer, `127.0.0.1:${peerPort}`, { security: pki.security(role, name), serverRoles: MEMBER_ROLES });
}

/**
 * Opens SyncPieces on a daemon as a cluster member would and returns the
 * upload grant it hands out first, with a `close` that ends the stream.
 */
export async function uploadGrant(peerPort: number, taskId: string): Promise<{ token: string; close: () => void }> {
  const client = peerClient(peerPort);
  const controller = new AbortController();
  const stream = client.syncPieces({ taskId, peerId: "test-child", hostId: "test-host" }, { signal: controller.signal })[Symbol.asyncIterator]();
  const first = await stream.next();
  const response = first.done === true ? undefined : first.value.response;
  if (response?.case !== "grant") throw new Error(`SyncPieces did not start with a grant: ${JSON.stringify(response?.case)}`);
  return {
    token: response.value.token,
    close: () => {
      controller.abort();
      client.close();
    },
  };
}

export type { PieceAnswer } from "@lacewing/dfdaemon";

/** One piece request on a daemon's download port (the piece protocol) with `token` as its grant. */
export function fetchPieceWith(uploadPort: number, taskId: string, number: number, token: string): Promise<PieceAnswer> {
  return requestPiece(uploadPort, taskId, number, token);
}

/** Why the parent refused, or "piece" when it sent the bytes. */
export function outcomeOf(answer: PieceAnswer): string {
  return "piece" in answer ? "piece" : answer.refused;
}
