import type { TaskListView, TaskView } from "@lacewing/manager";
import { ApiError, call } from "../api.js";
import { badge, fill, h, meter } from "../dom.js";
import { ago, formatBytes, shortId } from "../format.js";
import type { ViewContext } from "../main.js";
import { poll } from "../poll.js";

const STATES = ["", "pending", "running", "succeeded", "failed"];

/** Tasks the schedulers know: search by URL or digest, filter by state, each with its progress; a row opens the flow view. */
export async function renderTasks(ctx: ViewContext): Promise<void> {
  const q = ctx.query.get("q") ?? "";
  const state = ctx.query.get("state") ?? "";
  const search = h("input", { id: "task-search", name: "q", type: "search", value: q, placeholder: "URL, digest or task id", autocomplete: "off" });
  const select = h(
    "select",
    { id: "task-state", name: "state" },
    ...STATES.map((value) => h("option", { value, selected: value === state }, value === "" ? "any state" : value)),
  );
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Search tasks" },
    h("label", { for: "task-search" }, "Search"),
    search,
    h("label", { for: "task-state" }, "State"),
    select,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (search.value.trim() !== "") params.set("q", search.value.trim());
    if (select.value !== "") params.set("state", select.value);
    location.hash = `#/tasks${params.size > 0 ? `?${params.toString()}` : ""}`;
  });
  const results = h("div", { "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  fill(ctx.main, h("h1", {}, "Tasks"), form, problem, results);
  const query = new URLSearchParams({ perPage: "100" });
  if (q !== "") query.set("q", q);
  if (state !== "") query.set("state", state);
  await poll(
    ctx.signal,
    2_000,
    async () => {
      const page = await call<TaskListView>("GET", `/tasks?${query.toString()}`);
      problem.hidden = true;
      renderTable(results, page);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
      problem.hidden = false;
      fill(problem, `Refresh failed: ${(err as Error).message}`);
    },
  );
}

function progressOf(task: TaskView): number {
  if (task.peers.length === 0) return 0;
  return task.peers.reduce((sum, peer) => sum + peer.progress, 0) / task.peers.length;
}

function renderTable(element: HTMLElement, page: TaskListView): void {
  if (page.tasks.length === 0) {
    fill(element, h("p", {}, "No task matches."));
    return;
  }
  fill(
    element,
    h(
      "p",
      { class: "muted" },
      `${page.total} task${page.total === 1 ? "" : "s"}${page.total > page.tasks.length ? `, the newest ${page.tasks.length} shown` : ""}`,
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "tasks" },
        h("thead", {}, h("tr", {}, ...["Task", "URL", "Size", "State", "Peers", "Progress", "Created"].map((title) => h("th", { scope: "col" }, title)))),
        h(
          "tbody",
          {},
          ...page.tasks.map((task) =>
            h(
              "tr",
              { "data-task-id": task.id },
              h("th", { scope: "row" }, h("a", { href: `#/tasks/${task.id}`, "aria-label": `Flow of task ${task.id}` }, h("code", {}, shortId(task.id)))),
              h("td", { class: "url" }, task.url, task.digest === "" ? null : [h("br"), h("small", { class: "muted" }, task.digest)]),
              h("td", {}, task.contentLength < 0 ? "unknown" : formatBytes(task.contentLength)),
              h("td", {}, badge(task.state)),
              h("td", {}, `${task.peers.length}`, h("br"), h("small", { class: "muted" }, `${task.peers.filter((p) => p.state === "succeeded").length} done`)),
              h("td", {}, meter(progressOf(task), "average progress")),
              h("td", {}, ago(task.createdAt)),
            ),
          ),
        ),
      ),
    ),
  );
}
