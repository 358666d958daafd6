import type { MessageInitShape, schedulerv1 } from "@lacewing/api";
import { AsyncQueue, deferred, type Deferred } from "@lacewing/common";
import type { SchedulerClient } from "../scheduler/scheduler-pool.js";

type RequestInit = MessageInitShape<typeof schedulerv1.AnnouncePeerRequestSchema>;
export type AnnounceRequestBody = NonNullable<RequestInit["request"]>;
export type Answer = schedulerv1.AnnouncePeerResponse["response"];

/**
 * One AnnouncePeer stream: the peer's side of a download's conversation
 * with its scheduler. The scheduler answers each register and reschedule
 * (refreshes included) exactly once, in order, so `ask` pairs every answer
 * with its request on this stream; a broken stream takes its unanswered
 * requests with it, and a new stream starts with none. Every wait is
 * bounded. Other sends never throw; once the stream broke they are dropped
 * (the download goes on without the scheduler). Task updates (the task's
 * length and piece digests, which the scheduler sends whenever it learns
 * them) go to `onUpdate`.
 */
export class AnnounceStream {
  readonly endpoint: string;
  readonly #requests = new AsyncQueue<RequestInit>();
  readonly #ids: { hostId: string; taskId: string; peerId: string };
  readonly #abort = new AbortController();
  readonly #waiting: Array<Deferred<Answer | undefined>> = [];
  readonly #ended = deferred<void>();
  #broken = false;
  /** close() was called: the end that follows is ours, not the scheduler's. */
  #closedHere = false;
  #error: unknown;

  constructor(
    endpoint: string,
    client: Pick<SchedulerClient, "announcePeer">,
    ids: { hostId: string; taskId: string; peerId: string },
    onUpdate: (update: schedulerv1.TaskUpdate) => void = () => undefined,
  ) {
    this.endpoint = endpoint;
    this.#ids = ids;
    const responses = client.announcePeer(this.#requests, { signal: this.#abort.signal });
    void this.#read(responses, onUpdate);
  }

  get broken(): boolean {
    return this.#broken;
  }

  /** This side closed the stream. */
  get closedHere(): boolean {
    return this.#closedHere;
  }

  /** Why the stream broke, if the scheduler or the network said. */
  get error(): unknown {
    return this.#error;
  }

  /** Settles when the stream broke or ended. */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** Requests sent and not answered yet. */
  get unanswered(): number {
    return this.#waiting.length;
  }

  send(body: AnnounceRequestBody): void {
    if (this.#broken) return;
    this.#requests.push({ ...this.#ids, request: body });
  }

  /**
   * Sends a request the scheduler answers (register, reschedule) and
   * resolves with its answer: undefined when the stream broke or ended
   * first, or when no answer came within `timeoutMs` (the stream is then
   * given up as broken, since later answers could no longer be paired).
   */
  ask(body: AnnounceRequestBody, timeoutMs: number): Promise<Answer | undefined> {
    if (this.#broken) return Promise.resolve(undefined);
    const answer = deferred<Answer | undefined>();
    this.#waiting.push(answer);
    this.send(body);
    const timer = setTimeout(() => this.#breakWith(new Error(`the scheduler did not answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    return answer.promise.finally(() => clearTimeout(timer));
  }

  async #read(responses: AsyncIterable<schedulerv1.AnnouncePeerResponse>, onUpdate: (update: schedulerv1.TaskUpdate) => void): Promise<void> {
    try {
      // Read to the end even once closed: leaving the loop early would cancel the call and drop the last messages sent.
      for await (const message of responses) {
        if (this.#broken) continue;
        const { response } = message;
        if (response.case === "taskUpdate") onUpdate(response.value);
        else if (response.case !== undefined) this.#waiting.shift()?.resolve(response);
      }
      this.#breakWith(undefined);
    } catch (err) {
      this.#breakWith(err);
    }
  }

  #breakWith(err: unknown): void {
    if (this.#broken && this.#waiting.length === 0) {
      this.#ended.resolve();
      return;
    }
    this.#broken = true;
    this.#error ??= err;
    for (const waiting of this.#waiting.splice(0)) waiting.resolve(undefined);
    this.#requests.end();
    this.#abort.abort();
    this.#ended.resolve();
  }

  /** Ends the request side; the scheduler then ends the call. */
  close(): void {
    this.#closedHere = true;
    if (this.#broken) return;
    this.#broken = true;
    for (const waiting of this.#waiting.splice(0)) waiting.resolve(undefined);
    this.#requests.end();
    // Give the last messages a moment to flush before cancelling the call.
    setTimeout(() => this.#abort.abort(), 5_000).unref();
  }
}
