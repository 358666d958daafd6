import type { TaskFlowView, TaskView } from "@lacewing/manager";
import { ApiError, call } from "../api.js";
import { badge, fill, h, meter, s } from "../dom.js";
import { layoutFlow, ORIGIN, type FlowLayout } from "../flow-layout.js";
import { formatBytes, formatMs, shortId } from "../format.js";
import type { ViewContext } from "../main.js";
import { poll } from "../poll.js";

/** Landings the page keeps for the timeline; the scheduler keeps fewer per task anyway. */
const MAX_LANDINGS = 50_000;
const TIMELINE_WIDTH = 900;
const ROW_HEIGHT = 22;
const LABEL_WIDTH = 160;

type Landing = TaskFlowView["landings"][number];

/**
 * The flow of one task: a graph origin → seeds → peers with edge widths by
 * bytes, and a timeline of pieces landing on each peer. Polled every second
 * (only new landings travel, after `nextSeq`) while the view is open.
 */
export async function renderFlow(ctx: ViewContext, taskId: string): Promise<void> {
  const header = h("div", {});
  const live = h("p", { id: "flow-live", class: "muted", role: "status" }, "Loading…");
  const graph = h("section", { "aria-labelledby": "graph-title" });
  const tables = h("section", {});
  const timeline = h("section", { "aria-labelledby": "timeline-title" });
  fill(
    ctx.main,
    h("p", {}, h("a", { href: "#/tasks" }, "← All tasks")),
    h("h1", {}, "Flow of task ", h("code", {}, shortId(taskId))),
    header,
    live,
    graph,
    timeline,
    tables,
  );
  let nextSeq = 0;
  const landings: Landing[] = [];
  await poll(
    ctx.signal,
    1_000,
    async () => {
      let flow: TaskFlowView;
      try {
        flow = await call<TaskFlowView>("GET", `/tasks/${taskId}/flow?afterSeq=${nextSeq}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          fill(live, "No piece of this task has landed recently; waiting for one.");
          const task = await call<TaskView>("GET", `/tasks/${taskId}`).catch(() => null);
          renderHeader(header, task);
          return;
        }
        throw err;
      }
      landings.push(...flow.landings);
      if (landings.length > MAX_LANDINGS) landings.splice(0, landings.length - MAX_LANDINGS);
      nextSeq = flow.nextSeq;
      renderHeader(header, flow.task);
      const running = flow.task === null ? false : flow.task.peers.some((p) => p.state === "running" || p.state === "back_to_source" || p.state === "pending");
      fill(
        live,
        running ? "● Live: " : "Updated: ",
        `${flow.edges.length} edge${flow.edges.length === 1 ? "" : "s"}, ${formatBytes(flow.edges.reduce((sum, e) => sum + e.bytes, 0))} moved, ${nextSeq} piece landings`,
        flow.droppedLandings + flow.droppedPeerLandings + flow.droppedEdgeLandings > 0
          ? ` (beyond the scheduler's caps and not shown: ${flow.droppedLandings} older landings, ${flow.droppedPeerLandings} landings of unlisted peers, ${flow.droppedEdgeLandings} on unlisted edges)`
          : "",
      );
      renderGraph(graph, flow);
      renderTimeline(timeline, flow, landings);
      renderTables(tables, flow);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
      fill(live, `Refresh failed: ${(err as Error).message}`);
    },
  );
}

function renderHeader(element: HTMLElement, task: TaskView | null): void {
  if (task === null) {
    fill(element, h("p", { class: "muted" }, "The scheduler no longer holds this task (its flow record outlives it for a while)."));
    return;
  }
  const done = task.peers.filter((p) => p.state === "succeeded").length;
  fill(
    element,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "URL"),
      h("dd", { class: "url" }, task.url),
      task.digest === "" ? null : [h("dt", {}, "Digest"), h("dd", { class: "url" }, task.digest)],
      h("dt", {}, "Size"),
      h("dd", {}, task.contentLength < 0 ? "unknown" : `${formatBytes(task.contentLength)} in ${task.totalPieces} pieces of ${formatBytes(task.pieceLength)}`),
      h("dt", {}, "State"),
      h("dd", {}, badge(task.state), ` ${done} of ${task.peers.length} peers done`),
      h("dt", {}, "Scheduler"),
      h("dd", {}, h("code", {}, task.scheduler)),
    ),
  );
}

function nameOf(flow: TaskFlowView, index: number): string {
  if (index === ORIGIN) return "origin";
  const peer = flow.peers[index];
  // The host id (hostname plus a hash) tells apart several daemons on one machine, which share the hostname.
  return peer === undefined ? `peer ${index}` : peer.hostId || peer.hostname || shortId(peer.peerId);
}

function roleOf(flow: TaskFlowView, index: number): string {
  if (index === ORIGIN) return "origin";
  return flow.peers[index]?.hostType === "seed" ? "seed" : "peer";
}

function nodeShape(role: string, x: number, y: number): SVGElement {
  if (role === "origin") return s("rect", { x: x - 16, y: y - 16, width: 32, height: 32, rx: 3, class: "node node-origin" });
  if (role === "seed") return s("polygon", { points: `${x},${y - 18} ${x + 18},${y} ${x},${y + 18} ${x - 18},${y}`, class: "node node-seed" });
  return s("circle", { cx: x, cy: y, r: 14, class: "node node-peer" });
}

function edgePath(layout: FlowLayout, parent: number, child: number, backwards: boolean): string {
  const from = layout.nodes.find((n) => n.index === parent);
  const to = layout.nodes.find((n) => n.index === child);
  if (from === undefined || to === undefined) return "";
  // Edges end at the node's edge, not its centre, so the arrowhead shows.
  if (backwards) {
    // Between peers of one column (or back): an arc to the side, so it does not hide under the forward edges.
    const bend = 60 + Math.abs(to.y - from.y) / 2;
    return `M ${from.x + 16} ${from.y} C ${from.x + bend} ${from.y}, ${to.x + bend} ${to.y}, ${to.x + 18} ${to.y}`;
  }
  const mid = (from.x + to.x) / 2;
  return `M ${from.x + 16} ${from.y} C ${mid} ${from.y}, ${mid} ${to.y}, ${to.x - 20} ${to.y}`;
}

function renderGraph(element: HTMLElement, flow: TaskFlowView): void {
  const layout = layoutFlow(
    flow.peers.map((p) => ({ hostType: p.hostType })),
    flow.edges,
  );
  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${layout.width} ${layout.height}`,
      width: layout.width,
      height: layout.height,
      class: "flow-graph",
      role: "img",
      "aria-labelledby": "graph-title graph-desc",
    },
    s("desc", { id: "graph-desc" }, `${flow.edges.length} edges between the origin and ${flow.peers.length} peers; the table below lists them.`),
    s(
      "defs",
      {},
      s(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" },
        s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }),
      ),
    ),
    ...layout.edges.map((edge) => {
      const d = edgePath(layout, edge.parent, edge.child, edge.backwards);
      const from = layout.nodes.find((n) => n.index === edge.parent);
      const to = layout.nodes.find((n) => n.index === edge.child);
      // A backward arc peaks about 3/4 of its bend to the right of its ends.
      const labelX =
        from !== undefined && to !== undefined
          ? edge.backwards
            ? Math.max(from.x, to.x) + 0.75 * (60 + Math.abs(to.y - from.y) / 2)
            : (from.x + to.x) / 2
          : 0;
      const labelY = from !== undefined && to !== undefined ? (from.y + to.y) / 2 - 6 : 0;
      return s(
        "g",
        { class: `edge${edge.backwards ? " edge-back" : ""}`, "data-parent": edge.parent, "data-child": edge.child, "data-bytes": edge.bytes },
        s("title", {}, `${nameOf(flow, edge.parent)} → ${nameOf(flow, edge.child)}: ${formatBytes(edge.bytes)}`),
        s("path", { d, "stroke-width": edge.width.toFixed(1), "marker-end": "url(#arrow)" }),
        s("text", { x: labelX, y: labelY, class: "edge-label", "text-anchor": "middle" }, formatBytes(edge.bytes)),
      );
    }),
    ...layout.nodes.map((node) => {
      const role = roleOf(flow, node.index);
      return s(
        "g",
        { class: `node-group node-${role}`, "data-index": node.index },
        s("title", {}, `${role}: ${nameOf(flow, node.index)}`),
        nodeShape(role, node.x, node.y),
        s("text", { x: node.x, y: node.y + 32, "text-anchor": "middle", class: "node-label" }, nameOf(flow, node.index)),
        s("text", { x: node.x, y: node.y + 46, "text-anchor": "middle", class: "node-role" }, role),
      );
    }),
  );
  fill(
    element,
    h("h2", { id: "graph-title" }, "Who fed whom"),
    h("p", { class: "legend" }, "■ origin  ◆ seed peer  ● peer — line width grows with bytes; dashed arcs are peers feeding peers of the same rank."),
    h("div", { class: "graph-wrap" }, svg),
  );
}

function renderTimeline(element: HTMLElement, flow: TaskFlowView, landings: Landing[]): void {
  const rows = flow.peers.length;
  const last = Math.max(1, ...landings.map((l) => l.ms));
  const x = (ms: number): number => LABEL_WIDTH + (ms / last) * (TIMELINE_WIDTH - LABEL_WIDTH - 10);
  const height = rows * ROW_HEIGHT + 30;
  const ticks = landings.map((landing) => {
    const y = landing.child * ROW_HEIGHT + 4;
    const fromOrigin = landing.parent === ORIGIN;
    // Origin pieces are full-height bars, peer pieces half-height: the shape says the source, not only the colour.
    return s("rect", {
      x: x(landing.ms).toFixed(1),
      y: fromOrigin ? y : y + ROW_HEIGHT / 2 - 2,
      width: 2,
      height: fromOrigin ? ROW_HEIGHT - 6 : ROW_HEIGHT / 2 - 4,
      class: fromOrigin ? "tick tick-origin" : "tick tick-peer",
    });
  });
  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${TIMELINE_WIDTH} ${height}`,
      width: TIMELINE_WIDTH,
      height,
      class: "timeline",
      role: "img",
      "aria-labelledby": "timeline-title timeline-desc",
    },
    s("desc", { id: "timeline-desc" }, `${landings.length} piece landings over ${formatMs(last)} on ${rows} peers.`),
    ...flow.peers.map((_peer, i) =>
      s(
        "g",
        {},
        s("line", { x1: LABEL_WIDTH, x2: TIMELINE_WIDTH - 10, y1: i * ROW_HEIGHT + ROW_HEIGHT - 1, y2: i * ROW_HEIGHT + ROW_HEIGHT - 1, class: "row-line" }),
        s("text", { x: 4, y: i * ROW_HEIGHT + 15, class: "row-label" }, `${nameOf(flow, i)} (${roleOf(flow, i)})`),
      ),
    ),
    ...ticks,
    s("text", { x: LABEL_WIDTH, y: height - 8, class: "axis" }, "0"),
    s("text", { x: TIMELINE_WIDTH - 10, y: height - 8, class: "axis", "text-anchor": "end" }, formatMs(last)),
  );
  fill(
    element,
    h("h2", { id: "timeline-title" }, "Pieces landing"),
    h("p", { class: "legend" }, "Tall bars: a piece from the origin; short bars: a piece from a peer. Time since the first piece landed."),
    h("div", { class: "graph-wrap" }, svg),
  );
}

function renderTables(element: HTMLElement, flow: TaskFlowView): void {
  const task = flow.task;
  const edges = [...flow.edges].sort((a, b) => b.bytes - a.bytes);
  fill(
    element,
    h("h2", {}, "Edges"),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "edges" },
        h("thead", {}, h("tr", {}, ...["From", "To", "Bytes", "Pieces", "First → last piece"].map((title) => h("th", { scope: "col" }, title)))),
        h(
          "tbody",
          {},
          ...edges.map((edge) =>
            h(
              "tr",
              {},
              h("td", {}, `${nameOf(flow, edge.parent)} (${roleOf(flow, edge.parent)})`),
              h("td", {}, `${nameOf(flow, edge.child)} (${roleOf(flow, edge.child)})`),
              h("td", { class: "num" }, formatBytes(edge.bytes)),
              h("td", { class: "num" }, edge.pieces),
              h("td", {}, `${formatMs(edge.firstMs)} → ${formatMs(edge.lastMs)}`),
            ),
          ),
        ),
      ),
    ),
    task === null
      ? null
      : [
          h("h2", {}, "Peers"),
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "peers" },
              h(
                "thead",
                {},
                h("tr", {}, ...["Host", "Role", "State", "Progress", "From origin", "From peers", "Sources"].map((title) => h("th", { scope: "col" }, title))),
              ),
              h(
                "tbody",
                {},
                ...task.peers.map((peer) =>
                  h(
                    "tr",
                    {},
                    h("th", { scope: "row" }, peer.hostId || peer.hostname),
                    h("td", {}, peer.hostType),
                    h("td", {}, badge(peer.state)),
                    h("td", {}, meter(peer.progress, "pieces held"), ` ${peer.finishedPieces}/${task.totalPieces}`),
                    h("td", { class: "num" }, formatBytes(peer.bytesFromOrigin)),
                    h("td", { class: "num" }, formatBytes(peer.bytesFromPeers)),
                    h(
                      "td",
                      {},
                      peer.sources
                        .map((source) => {
                          const index = source.parentId === "" ? ORIGIN : flow.peers.findIndex((p) => p.peerId === source.parentId);
                          return `${index === -1 && source.parentId !== "" ? source.hostname || shortId(source.parentId) : nameOf(flow, index)} ${formatBytes(source.bytes)}`;
                        })
                        .join(", "),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ],
  );
}
