import type { schedulerv1, TaskInfo } from "@lacewing/api";
import { pieceGeometryProblem } from "@lacewing/common";

/** The peer the scheduler names as the task's digest source, and the certificate subject it must present. */
export interface DigestSource {
  candidate: schedulerv1.CandidateParent;
  subject: string;
}

/**
 * What the scheduler vouches for about a task's content: its length as the
 * origin gave it to the first peer that fetched it, and the SHA-256 of each
 * piece that peer reported. The scheduler also names that peer (the digest
 * source); its own digests, sent with its piece announcements, count as the
 * scheduler's, so a child that loses the scheduler keeps verifying. A child
 * takes nothing from any other parent: it asks a parent only for pieces
 * whose digest it holds, and keeps a piece only when its bytes match.
 */
export class TrustedTask {
  readonly #digests = new Map<number, string>();
  #length: { contentLength: number; pieceLength: number } | undefined;
  #source: DigestSource | undefined;

  get source(): DigestSource | undefined {
    return this.#source;
  }

  get length(): { contentLength: number; pieceLength: number } | undefined {
    return this.#length;
  }

  /** The piece's digest as hex, if the scheduler gave it. */
  digest(number: number): string | undefined {
    return this.#digests.get(number);
  }

  get digestCount(): number {
    return this.#digests.size;
  }

  /** Takes the scheduler's task info; returns true when it told the length for the first time. A geometry no task can have is ignored. */
  applyInfo(info: TaskInfo | undefined): boolean {
    if (info === undefined || this.#length !== undefined) return false;
    const contentLength = Number(info.contentLength);
    const pieceLength = Number(info.pieceLength);
    if (contentLength < 0 || pieceGeometryProblem(contentLength, pieceLength) !== undefined) return false;
    this.#length = { contentLength, pieceLength };
    return true;
  }

  /**
   * A digest the digest source sent with its announcement of the piece.
   * "new" when it taught this child the digest, "same" when it agrees,
   * "conflict" when it contradicts the scheduler's.
   */
  learnFromSource(number: number, sha256: string): "new" | "same" | "conflict" {
    const known = this.#digests.get(number);
    if (known !== undefined) return known === sha256 ? "same" : "conflict";
    this.#digests.set(number, sha256);
    return "new";
  }

  /** Takes a task update; returns what it taught: the length (first time only), and the pieces whose digest is new. */
  apply(update: schedulerv1.TaskUpdate): { lengthLearned: boolean; learned: number[] } {
    const lengthLearned = this.applyInfo(update.taskInfo);
    if (update.digestSource !== undefined && update.digestSource.peerId !== "")
      this.#source = { candidate: update.digestSource, subject: update.digestSourceSubject };
    const learned: number[] = [];
    for (const { number, sha256 } of update.pieceDigests) {
      if (sha256.length !== 32 || this.#digests.has(number)) continue;
      this.#digests.set(number, Buffer.from(sha256).toString("hex"));
      learned.push(number);
    }
    return { lengthLearned, learned };
  }
}
