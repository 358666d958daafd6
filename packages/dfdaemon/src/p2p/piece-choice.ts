/**
 * Which piece to ask of which parent next: a pure function of what the
 * child knows, so it is tested without sockets or clocks. Its cost does not
 * grow with the task's piece count: each parent's wanted pieces are kept
 * as a set by the caller, and only the first few of them are looked at.
 */

/** What the choice needs to know of one parent the child has not given up on. */
export interface ParentView {
  id: string;
  /** Pieces it announced that the child still wants (lacks, and holds a digest for), roughly lowest first. */
  useful: ReadonlySet<number>;
  /** Requests to it in flight now. */
  inflight: number;
  /** It may be asked now: its grant arrived and it is not backing off. */
  usable: boolean;
  /** Bytes per millisecond measured so far; Infinity when unknown (so it gets tried). */
  speed: number;
  /** Pieces it sent elsewhere (super-seeding), with the epoch ms until which not to ask it for them. */
  elsewhere: ReadonlyMap<number, number>;
}

/** One request in flight: which parent, since when. */
export interface InflightRequest {
  parentId: string;
  startedAt: number;
}

export interface ChoiceInput {
  parents: readonly ParentView[];
  /** How many parents of this child hold each piece (for rarest-first). */
  holders: (number: number) => number;
  /** Requests in flight by piece. */
  inflight: ReadonlyMap<number, readonly InflightRequest[]>;
  /** Requests in flight to one parent at most. */
  perParentLimit: number;
  /** Of the equally rare pieces, a random one of the lowest-numbered `window`. */
  window: number;
  /** Pieces of one parent looked at for rarity, at most. */
  scan: number;
  now: number;
  /** In [0, 1): breaks ties, so children of one parent fetch different pieces. */
  random: () => number;
}

export interface Choice {
  parentId: string;
  piece: number;
  /** Endgame: the piece is already in flight from another parent; whichever copy lands first wins. */
  duplicate: boolean;
}

/** Copies of one piece in flight at most, in endgame. */
const ENDGAME_COPIES = 2;

/**
 * The next request, if any. The idlest usable parent (fewest requests in
 * flight, then fastest, then at random) gets the rarest of the first
 * `scan` wanted pieces it holds that are not in flight — a random one of
 * the lowest-numbered few equally rare, so the file still fills roughly in
 * order. When no parent holds a wanted piece that is not already in flight,
 * the download is in its endgame: an idle parent is asked for a piece in
 * flight elsewhere (the oldest request first), so one slow parent cannot
 * hold up the last pieces.
 */
export function pickNextPiece(input: ChoiceInput): Choice | undefined {
  const ready = input.parents.filter((parent) => parent.usable && parent.inflight < input.perParentLimit);
  if (ready.length === 0) return undefined;
  const order = new Map(ready.map((parent) => [parent, input.random()]));
  ready.sort((a, b) => a.inflight - b.inflight || b.speed - a.speed || order.get(a)! - order.get(b)!);
  for (const parent of ready) {
    const piece = rarestFresh(parent, input);
    if (piece !== undefined) return { parentId: parent.id, piece, duplicate: false };
  }
  if (!inEndgame(input)) return undefined;
  for (const parent of ready) {
    if (parent.inflight > 0) continue;
    const piece = oldestInflightElsewhere(parent, input);
    if (piece !== undefined) return { parentId: parent.id, piece, duplicate: true };
  }
  return undefined;
}

/** True when every wanted piece any parent holds is in flight: nothing fresh is left to ask for. */
function inEndgame(input: ChoiceInput): boolean {
  for (const parent of input.parents) for (const number of parent.useful) if (!input.inflight.has(number)) return false;
  return true;
}

function askable(parent: ParentView, number: number, now: number): boolean {
  return (parent.elsewhere.get(number) ?? 0) <= now;
}

function rarestFresh(parent: ParentView, input: ChoiceInput): number | undefined {
  let rarest = Number.POSITIVE_INFINITY;
  let choices: number[] = [];
  let looked = 0;
  for (const number of parent.useful) {
    if (input.inflight.has(number) || !askable(parent, number, input.now)) continue;
    const holders = input.holders(number);
    if (holders < rarest) {
      rarest = holders;
      choices = [number];
    } else if (holders === rarest && choices.length < input.window) {
      choices.push(number);
    }
    // Nothing is rarer than one holder: the lowest few of those are the answer.
    if (++looked >= input.scan || (rarest <= 1 && choices.length >= input.window)) break;
  }
  return choices[Math.floor(input.random() * choices.length)];
}

function oldestInflightElsewhere(parent: ParentView, input: ChoiceInput): number | undefined {
  let best: number | undefined;
  let bestStarted = Number.POSITIVE_INFINITY;
  for (const number of parent.useful) {
    const requests = input.inflight.get(number);
    if (requests === undefined || requests.length >= ENDGAME_COPIES || !askable(parent, number, input.now)) continue;
    if (requests.some((request) => request.parentId === parent.id)) continue;
    const started = Math.min(...requests.map((request) => request.startedAt));
    if (started < bestStarted) {
      bestStarted = started;
      best = number;
    }
  }
  return best;
}
