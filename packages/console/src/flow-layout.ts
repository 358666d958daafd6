/**
 * Where the flow view draws things: pure functions of a task's flow record,
 * so they are tested without a browser. The origin is the first column; a
 * peer's column is one past its nearest source (breadth-first from the
 * origin over edges that carried bytes), so seeds that fetched from the
 * origin come second and the peers they fed after them. Peers that have
 * received nothing yet wait in a column of their own at the end.
 */

export interface LayoutPeer {
  hostType: "normal" | "seed" | "unknown";
}

export interface LayoutEdge {
  parent: number;
  child: number;
  bytes: number;
}

export interface NodePlace {
  /** Index into the flow's peers; -1 for the origin. */
  index: number;
  column: number;
  x: number;
  y: number;
}

export interface EdgePlace {
  parent: number;
  child: number;
  bytes: number;
  width: number;
  /** The edge goes back to an earlier or the same column (peers feeding each other). */
  backwards: boolean;
}

export interface FlowLayout {
  width: number;
  height: number;
  nodes: NodePlace[];
  edges: EdgePlace[];
}

export const ORIGIN = -1;
const COLUMN_GAP = 220;
const ROW_GAP = 96;
const MARGIN = 60;
const MIN_WIDTH = 1.5;
const MAX_WIDTH = 14;

/** Each peer's column: 0 for the origin, 1 + the nearest source's column; waiting peers last (seeds in column 1). */
export function columnsOf(peers: readonly LayoutPeer[], edges: readonly LayoutEdge[]): number[] {
  const depth = new Array<number>(peers.length).fill(Number.POSITIVE_INFINITY);
  const children = new Map<number, number[]>();
  for (const edge of edges) {
    if (edge.bytes <= 0) continue;
    const list = children.get(edge.parent) ?? [];
    list.push(edge.child);
    children.set(edge.parent, list);
  }
  let frontier = [ORIGIN];
  for (let level = 1; frontier.length > 0; level++) {
    const next: number[] = [];
    for (const parent of frontier)
      for (const child of children.get(parent) ?? []) {
        if (depth[child] !== Number.POSITIVE_INFINITY) continue;
        depth[child] = level;
        next.push(child);
      }
    frontier = next;
  }
  const reached = depth.filter((d) => Number.isFinite(d));
  const waiting = Math.max(2, ...reached.map((d) => d + 1));
  return depth.map((d, i) => (Number.isFinite(d) ? d : peers[i]?.hostType === "seed" ? 1 : waiting));
}

/** The whole graph: node positions by column and edge widths by bytes (square root, so small edges stay visible). */
export function layoutFlow(peers: readonly LayoutPeer[], edges: readonly LayoutEdge[]): FlowLayout {
  const columns = columnsOf(peers, edges);
  const byColumn = new Map<number, number[]>([[0, [ORIGIN]]]);
  columns.forEach((column, index) => byColumn.set(column, [...(byColumn.get(column) ?? []), index]));
  const used = [...byColumn.keys()].sort((a, b) => a - b);
  const tallest = Math.max(...[...byColumn.values()].map((list) => list.length));
  const height = MARGIN * 2 + Math.max(0, tallest - 1) * ROW_GAP;
  const nodes: NodePlace[] = [];
  used.forEach((column, position) => {
    const list = byColumn.get(column) ?? [];
    const top = (height - (list.length - 1) * ROW_GAP) / 2;
    list.forEach((index, row) => nodes.push({ index, column, x: MARGIN + position * COLUMN_GAP, y: top + row * ROW_GAP }));
  });
  const columnOf = (index: number): number => (index === ORIGIN ? 0 : (columns[index] ?? 0));
  const most = Math.max(1, ...edges.map((e) => e.bytes));
  return {
    width: MARGIN * 2 + Math.max(0, used.length - 1) * COLUMN_GAP + 140,
    height,
    nodes,
    edges: edges
      .filter((e) => e.bytes > 0)
      .map((e) => ({
        parent: e.parent,
        child: e.child,
        bytes: e.bytes,
        width: MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * Math.sqrt(e.bytes / most),
        backwards: columnOf(e.parent) >= columnOf(e.child),
      })),
  };
}
