import type { MessageInitShape, schedulerv1 } from "@lacewing/api";
import { AsyncQueue } from "@lacewing/common";
import type { SchedulerClient } from "../scheduler/scheduler-pool.js";

type RequestInit = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;
export type AnnounceRequestBody = NonNullable<RequestInit["request"]>;

/**
 * One AnnouncePeer stream: the peer's side of a download's conversation
 * with its scheduler. Sends never throw; once the stream broke they are
 * dropped (the download goes on without the scheduler). Task updates (the
 * task's length and piece digests, which the scheduler sends whenever it
 * learns them) go to `onUpdate`; next() returns only answers.
 */
export class AnnounceStream {
  readonly endpoint: string;
  readonly #requests = new AsyncQueue<RequestInit>();
  readonly #responses: AsyncIterator<schedulerv1.AnnouncePeerResponse>;
  readonly #ids: { hostId: string; taskId: string; peerId: string };
  readonly #abort = new AbortController();
  #broken = false;

  readonly #onUpdate: (update: schedulerv1.TaskUpdate) => void;

  constructor(
    endpoint: string,
    client: SchedulerClient,
    ids: { hostId: string; taskId: string; peerId: string },
    onUpdate: (update: schedulerv1.TaskUpdate) => void = () => undefined,
  ) {
    this.endpoint = endpoint;
    this.#ids = ids;
    this.#onUpdate = onUpdate;
    this.#responses = client.announcePeer(this.#requests, { signal: this.#abort.signal })[Symbol.asyncIterator]();
  }

  get broken(): boolean {
    return this.#broken;
  }

  send(body: AnnounceRequestBody): void {
    if (this.#broken) return;
    this.#requests.push({ ...this.#ids, request: body });
  }

  /** The next answer; undefined when the scheduler ended the stream. Rejects (and marks the stream broken) on error. */
  async next(): Promise<schedulerv1.AnnouncePeerResponse | undefined> {
    try {
      for (;;) {
        const result = await this.#responses.next();
        if (result.done === true) {
          this.#broken = true;
          return undefined;
        }
        if (result.value.response.case !== "taskUpdate") return result.value;
        this.#onUpdate(result.value.response.value);
      }
    } catch (err) {
      this.#broken = true;
      throw err;
    }
  }

  /** Ends the request side; the scheduler then ends the call. */
  close(): void {
    this.#broken = true;
    this.#requests.end();
    // Give the last messages a moment to flush before cancelling the call.
    setTimeout(() => this.#abort.abort(), 5_000).unref();
  }
}
